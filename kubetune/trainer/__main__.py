"""`python -m kubetune.trainer ...`: the same as `python -m kubetune.runtime ...` (an alias)."""

from __future__ import annotations

import sys

from kubetune.runtime.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="kubetune.trainer"))
