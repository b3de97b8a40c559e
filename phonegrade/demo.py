"""The Gradio page on `phonegrade.grading`: grade a phone photo, and let users report wrong predictions into a
corrections dataset.

`build_demo` wires a Grader to a page and three named API endpoints, `/predict`, `/explain` and `/flag`;
`launch` serves it until the process is stopped. The command line (`phonegrade demo`, app.py) is
`phonegrade.commands.demo`.
"""

from __future__ import annotations

import functools
import html
import logging
import signal
import threading

from .corrections import FINAL_PUSH_BUDGET_S, Prediction
from .errors import ImageLoadError, PhoneGradeError
from .grading import (
    NOT_A_PHONE_INVITE,
    SCRATCH_WORDS,
    SIDE_WORDS,
    Assessment,
    Example,
    Grader,
    describe_training_data,
)
from .labels import SCRATCH_LABELS, SIDE_LABELS

DEFAULT_CONCURRENCY = 4
log = logging.getLogger("phonegrade.demo")


def client_address(request, behind_proxy: bool = False) -> str:
    """Who sent a request: the connecting address, or behind a reverse proxy (a Hugging Face Space) the first
    address of X-Forwarded-For, which the proxy sets (taken only when told so: a client can write that header)."""
    if behind_proxy:
        forwarded = (request.headers.get("x-forwarded-for") or "").split(",")[0].strip()
        if forwarded:
            return forwarded
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


def _models_table(grader: Grader) -> str:
    rows = []
    for task, model in (("side", grader.side), ("scratch", grader.scratch)):
        rows.append(f"| {task} | `{html.escape(model.model_id)}` | `{model.revision}` | "
                    f"{describe_training_data(model)} |")
    return "| task | model | revision | |\n|---|---|---|---|\n" + "\n".join(rows)


INTRO = ("# phonegrade\n"
         "Upload a photo of a phone: which side it shows, and — for a front view — how scratched the screen is. "
         "If a prediction is wrong, report it below: corrections train the next model.")
CONSENT_LABEL = ("Contribute this photo under CC BY 4.0 (it may be published in the corrections dataset and used to "
                 "train models). Unticked, only the labels, the probabilities, your comment and a hash of the pixels "
                 "are kept.")
# Phone-sized screens: nothing wider than the screen (long model names and tables scroll inside their box).
PAGE_CSS = """
#summary h2 { margin: 0.2em 0; }
#models table { display: block; overflow-x: auto; }
#models code, #summary, #ask, #quality { overflow-wrap: anywhere; }
"""


def _clear_errors(fn):
    """An event handler whose failures reach the client as a clear message and nothing more: our own errors
    as they are (HTML-escaped: Gradio renders error messages as HTML), anything else as a generic message,
    with the traceback only in the server log."""
    import gradio as gr

    @functools.wraps(fn)
    def handler(*args):
        try:
            return fn(*args)
        except PhoneGradeError as err:
            raise gr.Error(html.escape(str(err), quote=False), print_exception=False) from None
        except Exception:  # noqa: BLE001 - anything unexpected: the details stay in the server log
            log.exception("%s failed", fn.__name__)
            raise gr.Error("Something went wrong on the server (it has been logged); please try again.",
                           print_exception=False) from None
    return handler


def _with_request(fn):
    """Mark a handler's `request` parameter as gr.Request, so that Gradio passes the request in: Gradio finds it by
    type hint, which this module's postponed (string) annotations would hide from it."""
    import gradio as gr

    fn.__annotations__["request"] = gr.Request
    return fn


def _upload_path(payload: dict | None) -> str | None:
    """The cached upload's path from an unprocessed image/file payload (events run with preprocess=False).

    Gradio's own preprocessing would open the file with PIL first (gr.Image: a corrupt upload then fails
    with a generic message naming its cache path) or leave an empty temporary file behind (gr.File); this
    way the file reaches `load_image`, with its limits and clear errors, untouched. Gradio has already
    checked that the path is an upload in its cache.
    """
    if not payload:
        return None
    if payload.get("path"):
        return payload["path"]
    raise ImageLoadError("upload: send the image as a file")  # e.g. an inline data: URL


def _quality_hint(assessment: Assessment) -> str:
    if not assessment.quality.warnings:
        return ""
    lead = "**Retake hint:**" if assessment.gradable else "**Too poor to grade.**"
    return lead + "\n" + "\n".join(f"- {html.escape(warning)}" for warning in assessment.quality.warnings)


def _ask_prompt(assessment: Assessment) -> str:
    if not assessment.ask:
        return ""
    return (f"**Not sure about this one.** {html.escape(assessment.ask_reason)} Is the grade right? Confirm or "
            "correct it in the form below and press *Send answer*.")


def _page_handlers(grader: Grader):
    """The page's events: grade (a sentence, hints, the question and the form filled in when asked), heatmap,
    correction."""
    import gradio as gr

    @_clear_errors
    def ui_predict(payload):
        path = _upload_path(payload)
        if not path:
            return ("", "", "", None, None, "", gr.update(), gr.update(), "flagged", gr.update(),
                    gr.update(value="Submit correction"), None)
        assessment = grader.assess(grader.read_upload(path))
        prediction = assessment.prediction
        if assessment.ask:  # the form, opened and filled in with the grade: confirming is one click
            form = (gr.update(value=Prediction.top(prediction.side)),
                    gr.update(value=Prediction.top(prediction.scratch)), "asked", gr.update(open=True),
                    gr.update(value="Send answer"))
        else:
            form = (gr.update(value=""), gr.update(value=""), "flagged", gr.update(),
                    gr.update(value="Submit correction"))
        shown = prediction if assessment.gradable else Prediction({}, {})  # no grade shown, not even in details
        invite = f"\n{NOT_A_PHONE_INVITE}" if assessment.not_a_phone else ""
        return (f"## {assessment.sentence()}{invite}", _quality_hint(assessment), _ask_prompt(assessment),
                shown.side or None, shown.scratch or None, assessment.note, *form, assessment)

    @_clear_errors
    def ui_heatmap(payload, assessment: Assessment | None):
        # The grade just shown (ui_predict's assessment) says whether and what to explain: no model runs twice.
        path = _upload_path(payload)
        if not path or assessment is None or not assessment.gradable:
            return gr.update(value=None, label="Heatmap")
        explanation = grader.explain(grader.read_upload(path), prediction=assessment.prediction)
        if explanation is None:  # not a phone: nothing to show where
            return gr.update(value=None, label="Heatmap")
        explained, task, label = explanation
        words = SCRATCH_WORDS[label] if task == "scratch" else SIDE_WORDS[label].lower()
        return gr.update(value=explained, label=f"Heatmap: where the {task} model sees {words}")

    @_clear_errors
    @_with_request
    def ui_flag(payload, corrected_side, corrected_scratch, comment, consent, source, request):
        image = grader.read_upload(_upload_path(payload))
        record_id = grader.flag(image, corrected_side, corrected_scratch, comment, consent=bool(consent),
                                asked=source == "asked", client=client_address(request, grader.behind_proxy))
        kept = "with the photo" if consent else "without the photo"
        return f"Saved {kept}, thank you. Record `{record_id}`."

    return ui_predict, ui_heatmap, ui_flag


def _add_api_endpoints(grader: Grader, limit: dict) -> None:
    """Script-friendly endpoints on hidden components (inside the Blocks): /predict and /flag answer plain
    JSON, /explain an image file."""
    import gradio as gr

    @_clear_errors
    def api_predict(payload) -> dict:
        assessment = grader.assess(grader.read_upload(_upload_path(payload)))
        prediction = assessment.prediction
        return {"summary": assessment.sentence(), "side": prediction.side, "scratch": prediction.scratch or None,
                "graded": bool(prediction.scratch), "note": assessment.note.replace("**", ""),
                "ask": assessment.ask, "ask_reason": assessment.ask_reason, "quality": assessment.quality.to_dict(),
                **grader.models}

    @_clear_errors
    def api_explain(payload, task, label):
        explanation = grader.explain(grader.read_upload(_upload_path(payload)), task or None, label or None)
        return explanation[0] if explanation else None  # None: not a phone, and no task named

    @_clear_errors
    @_with_request
    def api_flag(payload, corrected_side, corrected_scratch, comment, consent, asked, request) -> dict:
        image = grader.read_upload(_upload_path(payload))
        return {"record_id": grader.flag(image, corrected_side, corrected_scratch, comment, consent=bool(consent),
                                         asked=bool(asked), client=client_address(request, grader.behind_proxy))}

    with gr.Column(visible=False):
        # A file, not an image: scripts send any file and get load_image's clear errors.
        api_image = gr.File()
        api_side, api_scratch, api_comment = gr.Textbox(), gr.Textbox(), gr.Textbox()
        api_consent, api_asked = gr.Checkbox(False), gr.Checkbox(False)
        api_task = gr.Textbox("", label="task: side, scratch, or empty for the page's choice")
        api_label = gr.Textbox("", label="label to explain, or empty")
        api_result = gr.JSON()
        api_heatmap = gr.Image(format="png")
        gr.Button().click(api_predict, api_image, api_result, api_name="predict", **limit)
        gr.Button().click(api_explain, [api_image, api_task, api_label], api_heatmap, api_name="explain",
                          **limit)
        gr.Button().click(api_flag, [api_image, api_side, api_scratch, api_comment, api_consent, api_asked],
                          api_result, api_name="flag", **limit)


def build_demo(grader: Grader, examples: list[Example] | None = None, concurrency: int = DEFAULT_CONCURRENCY,
               queue_size: int = 256, upload_ttl_s: int | None = None, analytics: bool = False,
               examples_text: str = ""):
    """The page and its /predict, /explain and /flag endpoints (launch it with css=PAGE_CSS).

    The page shows the grade as a sentence first, with capture-quality hints and, when a model is unsure, a
    question; the heatmap follows as a second step, so that it never delays the grade (it costs about one more
    prediction). concurrency: requests processed at once over all events (they share the models); up to
    `queue_size` more wait in Gradio's queue. upload_ttl_s: Gradio deletes uploaded files from its cache
    (GRADIO_TEMP_DIR) once they are this old, checking every quarter of it (None: never). analytics: let Gradio
    send its usage telemetry to gradio.app (off: the page makes no outside connection of its own).
    """
    import gradio as gr

    ui_predict, ui_heatmap, ui_flag = _page_handlers(grader)
    delete_cache = (max(1, upload_ttl_s // 4), upload_ttl_s) if upload_ttl_s else None
    # One concurrency group for every event: `concurrency` bounds the requests running at once, not per event.
    # preprocess=False: handlers get the raw payloads (see _upload_path).
    limit = {"concurrency_id": "grader", "preprocess": False}
    with gr.Blocks(title="phonegrade", delete_cache=delete_cache, analytics_enabled=analytics) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(min_width=280):
                image = gr.Image(type="filepath", sources=["upload", "webcam", "clipboard"], label="Phone photo",
                                 height=360, elem_id="photo")
                grade = gr.Button("Grade", variant="primary", elem_id="grade")
                if examples:
                    gr.Examples([example.path for example in examples], inputs=image, label="Examples")
                    gr.Markdown(examples_text, elem_id="examples-note")
            with gr.Column(min_width=280):
                summary = gr.Markdown(elem_id="summary")
                quality = gr.Markdown(elem_id="quality")
                ask = gr.Markdown(elem_id="ask")
                heatmap_out = gr.Image(label="Heatmap", interactive=False, format="png", height=360,
                                       elem_id="heatmap")
                with gr.Accordion("Details", open=False, elem_id="details"):
                    side_out = gr.Label(num_top_classes=len(SIDE_LABELS), label="Side", elem_id="side")
                    scratch_out = gr.Label(num_top_classes=len(SCRATCH_LABELS), label="Scratch grade",
                                           elem_id="scratch")
                    note = gr.Markdown(elem_id="note")
        with gr.Accordion("Report a wrong prediction", open=False, elem_id="report") as report:
            with gr.Row():
                side_fix = gr.Dropdown(["", *SIDE_LABELS], value="", label="Correct side", elem_id="side-fix",
                                       min_width=160)
                scratch_fix = gr.Dropdown(["", *SCRATCH_LABELS], value="", label="Correct scratch grade",
                                          elem_id="scratch-fix", min_width=160)
            comment = gr.Textbox(label="Comment (optional)", max_lines=3, elem_id="comment")
            consent = gr.Checkbox(False, label=CONSENT_LABEL, elem_id="consent")
            source = gr.State("flagged")  # "asked" while the form answers the page's question
            submit = gr.Button("Submit correction", elem_id="submit-correction")
            status = gr.Markdown(elem_id="flag-status")
        graded = gr.State(None)  # the shown grade's Assessment, for its heatmap
        with gr.Accordion("Models", open=False, elem_id="models"):
            gr.Markdown(_models_table(grader))

        outputs = [summary, quality, ask, side_out, scratch_out, note, side_fix, scratch_fix, source, report, submit,
                   graded]
        for trigger in (image.change, grade.click):
            trigger(ui_predict, image, outputs, api_visibility="private", **limit).success(
                ui_heatmap, [image, graded], heatmap_out, api_visibility="private", **limit)
        submit.click(ui_flag, [image, side_fix, scratch_fix, comment, consent, source], status,
                     api_visibility="private", **limit)

        _add_api_endpoints(grader, limit)
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    return demo


def _delete_uploads(demo) -> None:
    """Delete the uploads Gradio holds for `demo`, as Gradio does when its server stops (a private function of
    Gradio's: should a release move it, Gradio's own deletion still runs, if later)."""
    try:
        from gradio.route_utils import delete_files_created_by_app
    except ImportError:
        log.warning("this Gradio has no route_utils.delete_files_created_by_app: uploads are left to Gradio")
        return
    delete_files_created_by_app(demo, age=None)


def launch(demo, host: str, port: int, max_upload_bytes: int, pusher=None, delete_uploads: bool = True,
           web_dir: str | None = None) -> None:
    """Serve `demo` until the process is interrupted or terminated; then stop `pusher` (a HubPusher: its last push)
    and, with delete_uploads, delete the uploads Gradio holds. `web_dir`: a site written by `phonegrade web`,
    served as it is at /web/ beside the page."""
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    # Routes given to the app before Gradio adds its own are matched first: /web/ is the static site's.
    routes = [Mount("/web", app=StaticFiles(directory=web_dir, html=True), name="web")] if web_dir else []
    # SIGTERM (docker stop, systemd) closes the app like Ctrl-C does: Gradio deletes the uploads it holds, and the
    # corrections pusher makes its last push (for at most corrections.FINAL_PUSH_BUDGET_S). The push starts at the
    # signal, so that it and Gradio's wait for its server to stop overlap instead of adding up.
    last_push = threading.Thread(target=pusher.stop, name="corrections-stop", daemon=True) if pusher else None

    def interrupt(signum, frame):
        if last_push and last_push.ident is None:  # not started yet (a second signal must not restart it)
            last_push.start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    try:
        # show_error=False: only gr.Error messages (clear, ours) reach the client, never other exceptions' text.
        demo.launch(server_name=host, server_port=port, max_file_size=max_upload_bytes, show_error=False,
                    css=PAGE_CSS, app_kwargs={"routes": routes})
    finally:
        # Gradio deletes the uploads it holds as its server's last act, which open client connections can delay
        # past this process's exit (launch returns after waiting 5 s): delete them here, as Gradio would.
        if delete_uploads:
            _delete_uploads(demo)
        if last_push and last_push.ident is not None:
            last_push.join(FINAL_PUSH_BUDGET_S + 1)
        elif pusher:
            pusher.stop()
