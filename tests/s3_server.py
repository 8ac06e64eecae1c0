"""A real S3 endpoint for tests and benchmarks: `moto_server` on 127.0.0.1, in a subprocess.

```
with MotoServer() as server:
    client = server.client()
    client.create_bucket(Bucket="data")
```
`enable_auth()` makes the server check signatures against IAM access keys made with
`create_access_key()` (moto's /moto-api/reset-auth switch).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REGION = "us-east-1"
# moto does not check credentials until auth is enabled; these sign requests until then.
ANY_ACCESS_KEY = "moto-anything"
ANY_SECRET_KEY = "moto-anything-secret"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int) -> list[str]:
    binary = Path(sys.executable).with_name("moto_server")
    head = [str(binary)] if binary.exists() else [sys.executable, "-m", "moto.server"]
    return [*head, "-H", "127.0.0.1", "-p", str(port)]


class MotoServer:
    """A moto_server subprocess; `url` is its endpoint. Use as a context manager or start()/stop()."""

    def __init__(self, log_path: str | os.PathLike[str] | None = None) -> None:
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        for _attempt in range(3):
            self.port = free_port()
            log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
            env = {k: v for k, v in os.environ.items() if k != "INITIAL_NO_AUTH_ACTION_COUNT"}
            self.process = subprocess.Popen(_command(self.port), stdout=log, stderr=log, env=env)
            if log is not subprocess.DEVNULL:
                log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1).read()
                    return self
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.05)
            self.stop()  # port taken meanwhile, or too slow: try another port
        raise RuntimeError(f"moto_server did not start (command: {' '.join(_command(self.port))})")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(
        self,
        service: str = "s3",
        access_key: str = ANY_ACCESS_KEY,
        secret_key: str = ANY_SECRET_KEY,
    ) -> Any:
        """A boto3 client for this server."""
        import boto3

        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )

    def create_access_key(self, user: str = "kubetune-test") -> tuple[str, str]:
        """An IAM user allowed everything on S3, and its (access key, secret key). Call before enable_auth()."""
        iam = self.client("iam")
        iam.create_user(UserName=user)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName=user, PolicyName="s3-all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def _set_auth(self, free_actions: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=free_actions.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    def enable_auth(self) -> None:
        """From now on every request must be signed with a key from create_access_key()."""
        self._set_auth("0")

    def disable_auth(self) -> None:
        self._set_auth("inf")
