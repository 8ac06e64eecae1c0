"""`python -m kubetune.runtime --spec JOBSPEC.json --workspace DIR [--marker-timeout SECONDS]`.

Run under torchrun for several processes. On failure the exit status is 1 and the last
line on stderr is `kubetune.runtime: error: <message>`.
"""

from __future__ import annotations

import sys

from kubetune.runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
