"""`accelerate launch phonegrade/train.py ARGS` (or `python phonegrade/train.py ARGS`): `phonegrade train ARGS`.

A script file, so that `accelerate launch` can start it in every process; the training itself is
`phonegrade.training`.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file: make the package importable from a checkout
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from phonegrade.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
