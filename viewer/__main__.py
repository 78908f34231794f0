"""`python -m viewer`: the same as the `reasoning-viewer` command (see viewer/cli.py)."""

import sys

from viewer.cli import main

if __name__ == "__main__":
    sys.exit(main())
