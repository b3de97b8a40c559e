"""`python -m phonegrade ...`: the `phonegrade` command."""

import sys

from .cli import main

sys.exit(main())
