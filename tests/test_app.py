"""`python app.py` as users start it: its first requests arriving all at once, and the connections it makes."""

import concurrent.futures
import contextlib
import socket
import threading
import time
import urllib.request

from phonegrade.corrections import CorrectionStore

from .conftest import serve_app


def test_concurrent_first_requests_to_a_fresh_app_all_succeed(trained_side_model, trained_scratch_model,
                                                              side_data, tmp_path):
    from gradio_client import Client, handle_file

    photos = sorted(side_data.glob("*/*/*.png"))[::3][:10]
    corrections = tmp_path / "corrections"
    with serve_app("--side-model", str(trained_side_model), "--scratch-model", str(trained_scratch_model),
                   "--corrections-dir", str(corrections), "--concurrency", "8") as app:
        clients = [Client(app["url"], verbose=False) for _ in range(10)]  # connected before the first request

        def requests(i):
            client, photo = clients[i], handle_file(str(photos[i]))
            predicted = [client.predict(photo, api_name="/predict") for _ in range(2)]
            flagged = client.predict(photo, "back", "", f"client {i}", api_name="/flag")
            return predicted, flagged["record_id"]

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            results = list(pool.map(requests, range(10)))
    for predicted, _ in results:
        assert predicted[0]["side"] == predicted[1]["side"] and sum(predicted[0]["side"].values()) > 0.999
    stored = {r["record_id"] for r in CorrectionStore(corrections).records()}
    assert stored == {record_id for _, record_id in results}


@contextlib.contextmanager
def recording_proxy():
    """A loopback "proxy" that records the request line of every connection made through it and then closes it:
    with HTTPS_PROXY pointing here, each outside connection a process tries shows up as `CONNECT host:443`."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                with contextlib.suppress(OSError):
                    seen.append(connection.recv(1024).decode("latin-1").split("\r\n")[0])

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", seen
    finally:
        server.close()


def _outside_connections(trained_side_model, trained_scratch_model, tmp_path, *extra_args):
    with recording_proxy() as (proxy, seen):
        env = {"GRADIO_ANALYTICS_ENABLED": None, "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy,
               "http_proxy": proxy, "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
        with serve_app("--side-model", str(trained_side_model), "--scratch-model", str(trained_scratch_model),
                       "--corrections-dir", str(tmp_path / "corrections"), *extra_args, env=env) as app:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(app["url"], timeout=30).read()
            time.sleep(5)  # Gradio sends its telemetry from background threads
        return [line for line in seen if line]


def test_the_demo_makes_no_outside_connection_unless_analytics_are_asked_for(trained_side_model,
                                                                            trained_scratch_model, tmp_path):
    assert _outside_connections(trained_side_model, trained_scratch_model, tmp_path / "default") == []
    # The same run with --analytics: the proxy does see Gradio's connections, so the check above can fail.
    opted_in = _outside_connections(trained_side_model, trained_scratch_model, tmp_path / "opt-in", "--analytics")
    assert any("gradio.app" in line for line in opted_in), opted_in
