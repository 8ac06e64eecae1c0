"""A stand-in for the trainer in the process tests, run by torchrun through kubetune's entry point.

`python -m tests.local.rank_probe [ARGS...]` prints one line, then acts as PROBE_MODE says:
sleep (default): sleeps for ten minutes;
fail: rank 1 exits with code 3 (a permanent error), the others sleep;
killed: rank 1 is killed by SIGKILL, and rank 0 exits with code 1 just after (as a peer does
when its partner is lost), so the reply file may name rank 0's error first.
"""

from __future__ import annotations

import os
import signal
import sys
import time

rank = int(os.environ.get("RANK", "0"))
print(f"probe rank {rank} started", flush=True)
mode = os.environ.get("PROBE_MODE", "sleep")
if mode == "fail" and rank == 1:
    print("probe: a permanent error", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "killed":
    time.sleep(0.5)
    if rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.1)
    print("probe: lost my peer", file=sys.stderr, flush=True)
    sys.exit(1)
time.sleep(600)
