"""Serving the dashboard with uvicorn: in a background thread (`UIServer.start`, for tests and
benchmarks) or until Ctrl+C (`serve`, for `kubetune ui`)."""

from __future__ import annotations

import socket
import sys
import threading
import time
import webbrowser
from typing import Any, TextIO

from kubetune.ui.app import create_app
from kubetune.ui.security import Access
from kubetune.ui.source import JobSource

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
START_TIMEOUT = 30.0


class UIServer:
    """The dashboard of `source` on `host`:`port` (0: any free port). A bind to a non-loopback
    address requires `token` on every request (a new one when not given: see `access.token`)."""

    def __init__(
        self,
        source: JobSource,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        token: str | None = None,
    ) -> None:
        import uvicorn

        self.source = source
        self.host = host
        self.access = Access.for_bind(host, token)
        self.stopping = threading.Event()
        self.app = create_app(source, self.access, self.stopping)
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on (once started)."""
        sockets = [s for server in self._server.servers for s in server.sockets]
        return int(sockets[0].getsockname()[1]) if sockets else 0

    @property
    def url(self) -> str:
        """The address to open, e.g. http://127.0.0.1:8765/ (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> UIServer:
        """Serves in a background thread; returns once the port is open."""
        self._thread = threading.Thread(target=self._server.run, name="kubetune-ui", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(
                    f"kubetune ui could not listen on {self.host}: see the message above"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"kubetune ui did not start within {START_TIMEOUT:g} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Ends the event streams and stops serving."""
        self.stopping.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wait(self) -> None:
        """Blocks until the server stops."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> UIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(
    source: JobSource,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    open_browser: bool = False,
    out: TextIO = sys.stdout,
) -> None:
    """Serves the dashboard until Ctrl+C, printing where (and, for a generated token, which)."""
    server = UIServer(source, host, port, token).start()
    url = server.url
    if host in ("0.0.0.0", "::"):  # every interface: name this machine
        url = f"http://{socket.gethostname()}:{server.port}/"
    print(f"kubetune ui: the {source.name} backend's jobs at {url}", file=out)
    address = url
    if server.access.token is not None:
        if token is None:
            address = f"{url}?token={server.access.token}"
            print(f"open {address}  (the token is required on every request)", file=out)
        else:
            print(f"open {url}?token=<the token you gave>", file=out)
    print("Ctrl+C stops it", file=out, flush=True)
    if open_browser:
        webbrowser.open(address)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
