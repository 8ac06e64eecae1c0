"""A small real HTTP server speaking the Kubernetes REST paths the backend calls, with an
in-memory store: create/get/list/patch/delete of Secrets, ConfigMaps, PVCs, PyTorchJobs,
TrainJobs and Katib's Experiments and Trials, pods (with the labels the Training Operator sets) and pod logs (with follow), and
events. Tests script job status transitions, failures (status code + body for a method and
resource), log lines and events.

It mimics what the backend relies on: 409 AlreadyExists, 404 NotFound with `details.name`,
404 for a missing namespace (`details.kind: namespaces`), a plain '404 page not found' for an
API group whose CRD is not installed, merge patches only with their content type, and the
garbage collector deleting objects whose ownerReferences point at a deleted owner.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

CORE = {
    "secrets": "Secret",
    "configmaps": "ConfigMap",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "pods": "Pod",
    "events": "Event",
}
CUSTOM = {
    ("kubeflow.org", "v1", "pytorchjobs"): "PyTorchJob",
    ("trainer.kubeflow.org", "v1alpha1", "trainjobs"): "TrainJob",
    ("kubeflow.org", "v1beta1", "experiments"): "Experiment",
    ("kubeflow.org", "v1beta1", "trials"): "Trial",
}


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def matches(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeApiServer:
    """The server and its store; `objects[(plural, namespace, name)]` is the stored object."""

    def __init__(self, namespaces: tuple[str, ...] = ("default",)) -> None:
        self.namespaces = set(namespaces)
        self.crds = {"pytorchjobs", "trainjobs", "experiments", "trials"}
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self.delete_bodies: list[dict[str, Any]] = []
        self.failures: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.delays: dict[tuple[str, str], float] = {}
        self.scripts: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.logs: dict[tuple[str, str, str], list[str]] = {}
        self.closed_logs: set[tuple[str, str, str]] = set()
        self.changed = threading.Condition()
        self._clock = itertools.count(1)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def configuration(self) -> Any:
        from kubernetes import client

        configuration = client.Configuration(host=self.host)
        configuration.retries = 0
        return configuration

    def start(self) -> FakeApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self.changed:
            self.closed_logs.update(self.logs)
            self.changed.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- scripting -------------------------------------------------------------------------------

    def names(self, plural: str, namespace: str = "default") -> list[str]:
        return sorted(n for (p, ns, n) in self.objects if p == plural and ns == namespace)

    def delay(self, method: str, plural: str, seconds: float) -> None:
        """Makes every `method` request on `plural` wait `seconds` before it is answered."""
        self.delays[(method, plural)] = seconds

    def fail(self, method: str, plural: str, code: int, message: str, reason: str = "") -> None:
        """Makes every `method` request on `plural` answer `code` with a Status body."""
        self.failures[(method, plural)] = (code, status_body(code, reason or "Failure", message))

    def script_status(
        self, plural: str, name: str, statuses: list[dict[str, Any]], namespace: str = "default"
    ) -> None:
        """Each GET of the object applies the next status (the last one stays)."""
        self.scripts[(plural, namespace, name)] = list(statuses)

    def set_status(
        self, plural: str, name: str, status: dict[str, Any], namespace: str = "default"
    ) -> None:
        with self.changed:
            self.objects[(plural, namespace, name)]["status"] = status

    def add_pod(
        self,
        name: str,
        job: dict[str, Any],
        init: dict[str, str],
        containers: dict[str, str],
        phase: str | None = None,
    ) -> None:
        """A pod owned by `job`; `init`/`containers` map container name -> state ('running',
        'terminated' or 'waiting'). A PyTorchJob's pod (named `<job>-<replica type>-<index>`)
        carries the labels the Training Operator sets; the phase defaults to what the states say."""

        def statuses(states: dict[str, str]) -> list[dict[str, Any]]:
            details = {
                "running": {"startedAt": "2026-01-01T00:02:00Z"},
                "terminated": {"exitCode": 0, "reason": "Completed"},
                "waiting": {"reason": "PodInitializing"},
            }
            return [
                {
                    "name": c,
                    "image": "example.com/image:1",
                    "imageID": "",
                    "ready": s == "running",
                    "restartCount": 0,
                    "state": {s: details[s]},
                }
                for c, s in states.items()
            ]

        namespace = job["metadata"]["namespace"]
        labels = {"kubetune.io/job-name": job["metadata"]["name"]}
        if job["kind"] == "PyTorchJob":
            replica_type, index = name.rsplit("-", 2)[-2:]
            labels |= {
                "training.kubeflow.org/operator-name": "pytorchjob-controller",
                "training.kubeflow.org/job-name": job["metadata"]["name"],
                "training.kubeflow.org/replica-type": replica_type,
                "training.kubeflow.org/replica-index": index,
            }
            if replica_type == "master":
                labels["training.kubeflow.org/job-role"] = "master"
        states = [*init.values(), *containers.values()]
        if phase is None:
            phase = "Running" if "running" in containers.values() else "Pending"
            if states and all(state == "terminated" for state in states):
                phase = "Succeeded"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": "2026-01-01T00:01:30Z",
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": job["apiVersion"],
                        "kind": job["kind"],
                        "name": job["metadata"]["name"],
                        "uid": job["metadata"]["uid"],
                    }
                ],
            },
            "spec": {
                "initContainers": [{"name": c} for c in init],
                "containers": [{"name": c} for c in containers],
            },
            "status": {
                "phase": phase,
                "startTime": "2026-01-01T00:01:40Z",
                "initContainerStatuses": statuses(init),
                "containerStatuses": statuses(containers),
            },
        }
        with self.changed:
            self.objects[("pods", namespace, name)] = pod

    def add_event(
        self, kind: str, name: str, message: str, when: str, namespace: str = "default"
    ) -> None:
        """An event about object `kind`/`name`, created at `when` (RFC 3339)."""
        with self.changed:
            event_name = f"{name}.{next(self._clock)}"
            self.objects[("events", namespace, event_name)] = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": event_name, "namespace": namespace, "creationTimestamp": when},
                "involvedObject": {"kind": kind, "name": name, "namespace": namespace},
                "message": message,
            }

    def write_log(self, pod: str, container: str, *lines: str, namespace: str = "default") -> None:
        with self.changed:
            self.logs.setdefault((namespace, pod, container), []).extend(lines)
            self.changed.notify_all()

    def close_log(self, pod: str, container: str, namespace: str = "default") -> None:
        """The container stops: a followed log stream of it ends."""
        with self.changed:
            self.logs.setdefault((namespace, pod, container), [])
            self.closed_logs.add((namespace, pod, container))
            self.changed.notify_all()

    # --- HTTP --------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def do_GET(self) -> None:
                server._serve(self, "GET")

            def do_POST(self) -> None:
                server._serve(self, "POST")

            def do_PATCH(self) -> None:
                server._serve(self, "PATCH")

            def do_DELETE(self) -> None:
                server._serve(self, "DELETE")

        return Handler

    def _route(self, path: str) -> tuple[str, str, str | None, str | None] | None:
        """(plural, namespace, name, subresource) or None for an unknown path."""
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) >= 5 and parts[4] in CORE:
            rest = parts[3:]
        elif parts[0] == "apis" and len(parts) >= 6 and parts[3] == "namespaces":
            if (parts[1], parts[2], parts[5]) not in CUSTOM or parts[5] not in self.crds:
                return None
            rest = parts[4:]
        else:
            return None
        namespace, plural = rest[0], rest[1]
        name = rest[2] if len(rest) > 2 else None
        sub = rest[3] if len(rest) > 3 else None
        return plural, namespace, name, sub

    def _serve(self, handler: Any, method: str) -> None:
        url = urlparse(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.changed:
            self.requests.append((method, url.path))
        route = self._route(url.path)
        if route is None:
            handler._send(404, b"404 page not found\n", "text/plain")
            return
        plural, namespace, name, sub = route
        body = handler._body() if method in ("POST", "PATCH", "DELETE") else None
        if (method, plural) in self.delays:
            time.sleep(self.delays[(method, plural)])
        if (method, plural) in self.failures:
            code, failure = self.failures[(method, plural)]
            handler._send(code, failure)
            return
        if sub == "log":
            self._serve_log(handler, namespace, name, query)
            return
        with self.changed:
            code, answer = self._apply(
                method, plural, namespace, name, body, query, handler.headers
            )
            self.changed.notify_all()
        handler._send(code, answer)

    def _apply(
        self,
        method: str,
        plural: str,
        namespace: str,
        name: str | None,
        body: Any,
        query: dict[str, str],
        headers: Any,
    ) -> tuple[int, Any]:
        kind = CORE.get(plural) or next(k for (_, _, p), k in CUSTOM.items() if p == plural)
        key = (plural, namespace, name or "")
        if method == "POST":
            if namespace not in self.namespaces:
                return 404, status_body(
                    404,
                    "NotFound",
                    f'namespaces "{namespace}" not found',
                    {"name": namespace, "kind": "namespaces"},
                )
            obj_name = body["metadata"]["name"]
            key = (plural, namespace, obj_name)
            if key in self.objects:
                return 409, status_body(
                    409,
                    "AlreadyExists",
                    f'{plural} "{obj_name}" already exists',
                    {"name": obj_name, "kind": plural},
                )
            obj = copy.deepcopy(body)
            obj["metadata"].update(
                uid=str(uuid.uuid4()),
                resourceVersion=str(next(self._clock)),
                creationTimestamp=f"2026-01-01T00:00:{next(self._clock):02d}Z",
            )
            self.objects[key] = obj
            return 201, obj
        if name is None:  # list
            items = [
                o
                for (p, ns, _), o in sorted(self.objects.items())
                if p == plural and ns == namespace and matches(o, query.get("labelSelector"))
            ]
            return 200, {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {}, "items": items}
        if key not in self.objects:
            return 404, status_body(
                404, "NotFound", f'{plural} "{name}" not found', {"name": name, "kind": plural}
            )
        if method == "GET":
            script = self.scripts.get(key)
            if script:
                self.objects[key]["status"] = script.pop(0) if len(script) > 1 else script[0]
            return 200, self.objects[key]
        if method == "PATCH":
            if headers.get("Content-Type") != "application/merge-patch+json":
                return 415, status_body(
                    415,
                    "UnsupportedMediaType",
                    f"this server takes merge patches, not {headers.get('Content-Type')}",
                )
            self.objects[key] = merge_patch(self.objects[key], body)
            return 200, self.objects[key]
        # DELETE, then the garbage collector: every object owned by a deleted one goes too.
        self.delete_bodies.append({"path": key, "body": body})
        obj = self.objects.pop(key)
        doomed = [obj["metadata"]["uid"]]
        while doomed:
            uid = doomed.pop()
            for other_key, other in list(self.objects.items()):
                if any(
                    ref.get("uid") == uid for ref in other["metadata"].get("ownerReferences") or []
                ):
                    doomed.append(other["metadata"]["uid"])
                    del self.objects[other_key]
        return 200, status_body(200, "", "deleted") | {"status": "Success"}

    def _serve_log(
        self, handler: Any, namespace: str, pod: str | None, query: dict[str, str]
    ) -> None:
        key = (namespace, pod or "", query.get("container", ""))
        if ("pods", namespace, pod or "") not in self.objects:
            handler._send(
                404,
                status_body(
                    404, "NotFound", f'pods "{pod}" not found', {"name": pod, "kind": "pods"}
                ),
            )
            return
        if query.get("follow") != "true":
            with self.changed:
                lines = self.logs.get(key, [])
                if "tailLines" in query:
                    lines = lines[-int(query["tailLines"]) :]
                text = "".join(line + "\n" for line in lines)
            handler._send(200, text.encode(), "text/plain")
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.end_headers()
        for line in self._follow(key):
            handler.wfile.write(line.encode() + b"\n")
            handler.wfile.flush()

    def _follow(self, key: tuple[str, str, str]) -> Iterator[str]:
        sent = 0
        while True:
            with self.changed:
                self.changed.wait_for(
                    lambda sent=sent: len(self.logs.get(key, [])) > sent or key in self.closed_logs
                )
                lines = self.logs.get(key, [])[sent:]
                closed = key in self.closed_logs
            sent += len(lines)
            yield from lines
            if closed and sent >= len(self.logs.get(key, [])):
                return


@contextmanager
def running_server(namespaces: tuple[str, ...] = ("default",)) -> Iterator[FakeApiServer]:
    server = FakeApiServer(namespaces).start()
    try:
        yield server
    finally:
        server.stop()
