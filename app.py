"""phonegrade demo: `python app.py` serves the Gradio page on http://127.0.0.1:7860 (`phonegrade demo` does the same
from an installed package).

With no arguments it runs offline on the embedded default models (phonegrade.DEFAULT_MODELS). Every option
can also be set with an environment variable (PHONEGRADE_SIDE_MODEL, PHONEGRADE_SCRATCH_MODEL,
PHONEGRADE_CORRECTIONS_DIR, PHONEGRADE_CORRECTIONS_REPO, ...). Hub access uses HF_TOKEN / `hf auth login`
and honours HF_ENDPOINT.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    from phonegrade.commands.demo import main as demo

    return demo(argv, prog="app.py", corrections_dir=str(ROOT / "data" / "corrections"))


if __name__ == "__main__":
    sys.exit(main())
