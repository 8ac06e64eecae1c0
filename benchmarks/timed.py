"""Runs a module or script with `transformers.Trainer.train` timed in wall and CPU seconds.

    python timed.py -m kubetune.runtime --spec ... --workspace ...
    python timed.py baselines/pad_dynamic.py --model ...

Writes {"wall_s", "cpu_s"} of the train() call to the file named by $KUBETUNE_BENCH_TIMING.
CPU seconds (all threads of the process) barely move when other processes take turns on
the cores, so tokens per CPU-second is the steadier figure on a shared machine. The wrapper
only measures: the code it runs is unchanged.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
from pathlib import Path
from typing import Any


def install(out: Path) -> None:
    """Wraps Trainer.train so that each call writes its wall and CPU seconds to `out`."""
    import transformers

    original = transformers.Trainer.train

    def train(self: Any, *args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            timing = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
            out.write_text(json.dumps(timing))

    transformers.Trainer.train = train  # type: ignore[method-assign]


def main() -> None:
    install(Path(os.environ["KUBETUNE_BENCH_TIMING"]))
    argv = sys.argv[1:]
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        sys.path.insert(0, str(Path(argv[0]).resolve().parent))
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
