"""``python -m dans``: the same as the ``dans`` command."""

import sys

from dans.cli import run

sys.exit(run())
