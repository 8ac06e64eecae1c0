"""A package index on 127.0.0.1 for pip, built in a test's folder: one tiny pure-Python wheel,
served by http.server (no internet)."""

from __future__ import annotations

import base64
import hashlib
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PROBE_PROJECT = "kubetune-probe"
PROBE_MODULE = "kubetune_probe"
PROBE_VALUE = 42


def build_wheel(folder: Path, project: str, version: str, module: str, source: str) -> Path:
    """A wheel of one module `module` with `source`, as pip installs it."""
    dist = project.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": source,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: kubetune-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def package_index(root: Path) -> Iterator[str]:
    """A PEP 503 index at http://127.0.0.1:PORT/simple holding `kubetune-probe` 1.0, whose
    module `kubetune_probe` has VALUE = 42; yields the index URL."""
    build_wheel(
        root / "simple" / PROBE_PROJECT,
        PROBE_PROJECT,
        "1.0",
        PROBE_MODULE,
        f"VALUE = {PROBE_VALUE}\n",
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()
