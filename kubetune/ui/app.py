"""The dashboard's web app: the page, its static files, the JSON API and the live event streams.

JSON API (documented in docs/ui.md):

    GET    /api/info                                  backend, version, namespaces, csrf_token
    GET    /api/jobs[?namespace=NS&state=STATE]        every job's summary
    POST   /api/jobs            {"yaml": TEXT, "filename": NAME}   create a job from job YAML
    GET    /api/jobs/NS/NAME                          one job: conditions, spec, outputs, metrics
    DELETE /api/jobs/NS/NAME                          stop and remove the job
    GET    /api/jobs/NS/NAME/history                  logged records (loss, learning rate, eval)
    GET    /api/jobs/NS/NAME/logs                     the end of every log
    GET    /api/jobs/NS/NAME/outputs/FILE             loss_curve.png or metrics.json (local)
    GET    /api/experiments[?namespace=NS&state=STATE] every hyperparameter search's summary
    GET    /api/experiments/NS/NAME                   one experiment: search space, trials, best
    DELETE /api/experiments/NS/NAME                   stop and remove it with its trials
    GET    /api/events                                event stream: `jobs` whenever the list changes
    GET    /api/jobs/NS/NAME/events                   event stream: `job`, `history`, `gone`
    GET    /api/jobs/NS/NAME/logs/stream              event stream: `lines`, then `end`
    GET    /api/experiments/events                    event stream: `experiments` on changes
    GET    /api/experiments/NS/NAME/events            event stream: `experiment`, `gone`
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kubetune import __version__
from kubetune.ui import source as sources
from kubetune.ui import views
from kubetune.ui.experiments import ExperimentSource, Unavailable, experiments_beside
from kubetune.ui.security import Access, AccessMiddleware

STATIC = Path(str(files("kubetune.ui") / "static"))
# Largest request body accepted for a new job (the job file loader allows 1 MiB of YAML).
MAX_BODY_BYTES = 4 * 2**20
# Lines sent in one `lines` event at most (a long log arrives in several).
MAX_LINES_PER_EVENT = 2000
# Seconds between keep-alive comments on an idle event stream.
KEEPALIVE_SECONDS = 15.0
_log = logging.getLogger(__name__)


class JSONAnswer(JSONResponse):
    """JSON whose NaN and infinities become null, so browsers can parse it."""

    def render(self, content: Any) -> bytes:
        """The JSON of `content`, with NaN and infinities as null."""
        return super().render(views.json_safe(content))


def create_app(
    source: sources.JobSource,
    access: Access,
    stopping: threading.Event | None = None,
    experiments: ExperimentSource | None = None,
) -> Any:
    """The ASGI app serving `source`'s jobs and `experiments` (default: those of the same
    backend) under `access`'s rules; event streams end once `stopping` is set."""
    stop = stopping or threading.Event()
    cache = _Cache()
    index = (STATIC / "index.html").read_text().replace("{{csrf_token}}", access.csrf_token)

    def jobs_now() -> list[dict[str, Any]]:
        return cache.get("jobs", source.poll_interval / 2, source.list_jobs)

    # --- pages and plain JSON ------------------------------------------------------------------

    def page(request: Request) -> Response:
        return HTMLResponse(index, headers={"cache-control": "no-store"})

    def info(request: Request) -> Response:
        return JSONAnswer(
            {
                "backend": source.name,
                "version": __version__,
                "namespaces": source.namespaces(),
                "csrf_token": access.csrf_token,
                "poll_interval": source.poll_interval,
                "experiments": True,
            }
        )

    def list_jobs(request: Request) -> Response:
        return JSONAnswer({"jobs": _asked_for(request, jobs_now())})

    async def create_job(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"the request is larger than {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(body)
            text, filename = data["yaml"], data.get("filename") or "pasted job YAML"
            if not isinstance(text, str) or not isinstance(filename, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise HTTPException(
                400, 'send JSON {"yaml": "<job YAML text>", "filename": "<optional name>"}'
            ) from None
        namespace, name = await anyio.to_thread.run_sync(
            source.create, text, Path(filename).name or "pasted job YAML", Path.cwd()
        )
        cache.clear()
        return JSONAnswer({"namespace": namespace, "name": name}, status_code=201)

    def get_job(request: Request) -> Response:
        return JSONAnswer(source.job(*_ref(request)))

    def delete_job(request: Request) -> Response:
        namespace, name = _ref(request)
        source.delete(namespace, name)
        cache.clear()
        return JSONAnswer({"deleted": True, "namespace": namespace, "name": name})

    def history(request: Request) -> Response:
        return JSONAnswer({"records": views.clean_history(source.history(*_ref(request)))})

    def logs(request: Request) -> Response:
        reader = source.logs(*_ref(request), follow=False)
        lines = reader.read_new()
        reader.close()
        return JSONAnswer({"sources": reader.sources, "lines": lines})

    def output(request: Request) -> Response:
        namespace, name = _ref(request)
        path = source.output_file(namespace, name, request.path_params["filename"])
        if path is None:
            raise HTTPException(404, "no such output")
        return FileResponse(path, headers={"cache-control": "no-store"})

    # --- event streams -------------------------------------------------------------------------

    async def job_list_events(request: Request) -> Response:
        changes = _changes("jobs", lambda: {"jobs": jobs_now()}, source.poll_interval)
        return _event_stream(request, changes, stop)

    async def job_events(request: Request) -> Response:
        namespace, name = _ref(request)
        await anyio.to_thread.run_sync(source.job, namespace, name)  # 404 before streaming
        reader = source.history_reader(namespace, name)

        async def events() -> AsyncIterator[tuple[str, Any]]:
            sent = None
            last_step: float | None = None
            first = True
            try:
                while True:
                    job = await anyio.to_thread.run_sync(source.job, namespace, name)
                    text = json.dumps(views.json_safe(job), sort_keys=True)
                    if text != sent:
                        sent = text
                        yield "job", job
                    new = await anyio.to_thread.run_sync(reader.read_new)
                    if first or views.restarts_in(last_step, new):
                        records = (
                            new
                            if first
                            else await anyio.to_thread.run_sync(source.history, namespace, name)
                        )
                        yield "history", {"reset": True, "records": views.clean_history(records)}
                        first = False
                    elif new:
                        yield "history", {"reset": False, "records": new}
                    else:
                        yield "", None
                    steps = [r["step"] for r in new if isinstance(r.get("step"), int | float)]
                    last_step = steps[-1] if steps else last_step
                    await anyio.sleep(source.poll_interval)
            except sources.NotFound:  # deleted, maybe between two of the reads above
                yield "gone", {"namespace": namespace, "name": name}

        return _event_stream(request, events(), stop)

    async def log_events(request: Request) -> Response:
        namespace, name = _ref(request)
        reader = await anyio.to_thread.run_sync(lambda: source.logs(namespace, name, follow=True))

        async def events() -> AsyncIterator[tuple[str, Any]]:
            try:
                yield "sources", {"sources": reader.sources}
                while True:
                    lines = await anyio.to_thread.run_sync(reader.read_new)
                    for start in range(0, len(lines), MAX_LINES_PER_EVENT):
                        yield "lines", {"lines": lines[start : start + MAX_LINES_PER_EVENT]}
                    if reader.ended():
                        yield "end", {}
                        return
                    if not lines:
                        yield "", None
                    await anyio.sleep(min(source.poll_interval, 0.5))
            finally:
                reader.close()

        return _event_stream(request, events(), stop)

    routes = [
        Route("/", page),
        Route("/api/info", info),
        Route("/api/jobs", list_jobs, methods=["GET"]),
        Route("/api/jobs", create_job, methods=["POST"]),
        Route("/api/events", job_list_events),
        *_experiment_routes(
            experiments or experiments_beside(source), jobs_now, cache, stop, source.poll_interval
        ),
        Route("/api/jobs/{namespace}/{name}", get_job, methods=["GET"]),
        Route("/api/jobs/{namespace}/{name}", delete_job, methods=["DELETE"]),
        Route("/api/jobs/{namespace}/{name}/history", history),
        Route("/api/jobs/{namespace}/{name}/logs", logs),
        Route("/api/jobs/{namespace}/{name}/logs/stream", log_events),
        Route("/api/jobs/{namespace}/{name}/events", job_events),
        Route("/api/jobs/{namespace}/{name}/outputs/{filename}", output),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONAnswer({"error": exc.detail}, status_code=exc.status_code)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONAnswer({"error": str(exc)}, status_code=404)

    async def bad_input(request: Request, exc: Exception) -> Response:
        return JSONAnswer({"error": str(exc)}, status_code=400)

    async def backend_error(request: Request, exc: Exception) -> Response:
        status = 409 if "already exists" in str(exc) else 500
        return JSONAnswer({"error": str(exc)}, status_code=status)

    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: http_error,
            sources.NotFound: not_found,
            ValueError: bad_input,
            RuntimeError: backend_error,
        },
    )
    return AccessMiddleware(app, access)


def _ref(request: Request) -> tuple[str, str]:
    """(namespace, name) of the request's path, both checked as DNS labels (400 otherwise)."""
    namespace = request.path_params["namespace"]
    name = request.path_params["name"]
    problems = [p for p in (sources.namespace_problem(namespace), sources.name_problem(name)) if p]
    if problems:
        raise HTTPException(400, "; ".join(problems))
    return namespace, name


def _asked_for(request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the namespace and state the request's query asks for (each: any, if not)."""
    namespace = request.query_params.get("namespace")
    state = request.query_params.get("state")
    return [
        row
        for row in rows
        if (namespace is None or row["namespace"] == namespace)
        and (state is None or row["state"] == state)
    ]


def _experiment_routes(
    experiments: ExperimentSource,
    jobs_now: Callable[[], list[dict[str, Any]]],
    cache: _Cache,
    stop: threading.Event,
    poll_interval: float,
) -> list[Route]:
    """The routes of the experiments: list, one, delete and their event streams. A trial says
    whether its job is there (`job`), from the job list `jobs_now` returns."""

    def listing() -> dict[str, Any]:
        try:
            found = experiments.list_experiments()
        except Unavailable as e:
            return {"available": False, "experiments": [], "message": str(e)}
        return {"available": True, "experiments": found, "message": ""}

    def experiments_now() -> dict[str, Any]:
        answer: dict[str, Any] = cache.get("experiments", poll_interval / 2, listing)
        return answer

    def one(namespace: str, name: str) -> dict[str, Any]:
        found = experiments.experiment(namespace, name)
        jobs = {(j["namespace"], j["name"]) for j in jobs_now()}
        for trial in found["trials"]:
            trial["job"] = (namespace, trial["name"]) in jobs
        return found

    def list_experiments(request: Request) -> Response:
        answer = experiments_now()
        return JSONAnswer({**answer, "experiments": _asked_for(request, answer["experiments"])})

    def get_experiment(request: Request) -> Response:
        return JSONAnswer(one(*_ref(request)))

    def delete_experiment(request: Request) -> Response:
        namespace, name = _ref(request)
        experiments.delete(namespace, name)
        cache.clear()
        return JSONAnswer({"deleted": True, "namespace": namespace, "name": name})

    async def list_events(request: Request) -> Response:
        return _event_stream(request, _changes("experiments", experiments_now, poll_interval), stop)

    async def experiment_events(request: Request) -> Response:
        namespace, name = _ref(request)
        await anyio.to_thread.run_sync(one, namespace, name)  # 404 before streaming

        async def events() -> AsyncIterator[tuple[str, Any]]:
            try:
                async for change in _changes(
                    "experiment", lambda: one(namespace, name), poll_interval
                ):
                    yield change
            except sources.NotFound:
                yield "gone", {"namespace": namespace, "name": name}

        return _event_stream(request, events(), stop)

    return [
        Route("/api/experiments", list_experiments, methods=["GET"]),
        Route("/api/experiments/events", list_events),
        Route("/api/experiments/{namespace}/{name}", get_experiment, methods=["GET"]),
        Route("/api/experiments/{namespace}/{name}", delete_experiment, methods=["DELETE"]),
        Route("/api/experiments/{namespace}/{name}/events", experiment_events),
    ]


async def _changes(
    event: str, read: Callable[[], Any], interval: float
) -> AsyncIterator[tuple[str, Any]]:
    """(event, what `read` returns) whenever it differs from what was sent last, else ("", None);
    `read` runs in a thread every `interval` seconds."""
    sent = None
    while True:
        value = await anyio.to_thread.run_sync(read)
        text = json.dumps(views.json_safe(value), sort_keys=True)
        if text != sent:
            sent = text
            yield event, value
        else:
            yield "", None
        await anyio.sleep(interval)


def _event_stream(
    request: Request, events: AsyncIterator[tuple[str, Any]], stop: threading.Event
) -> Response:
    """Server-sent events: each (event, data) as one message; ("", None) means nothing new, and
    becomes a keep-alive comment now and then. Ends when the client leaves or the server stops,
    and, with a comment saying why, when a read fails (the browser then reconnects)."""

    async def body() -> AsyncIterator[str]:
        quiet_since = time.monotonic()
        try:
            async for event, data in events:
                if stop.is_set() or await request.is_disconnected():
                    return
                if event:
                    quiet_since = time.monotonic()
                    payload = json.dumps(views.json_safe(data), separators=(",", ":"))
                    yield f"event: {event}\ndata: {payload}\n\n"
                elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
        except Exception as e:  # the response has started: end it whole rather than break it off
            _log.warning("event stream %s ended by an error", request.url.path, exc_info=True)
            yield f": stream ended: {' '.join(str(e).split())}\n\n"

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


class _Cache:
    """Values computed at most once per `ttl` seconds, shared by every request; a slow value
    (a cluster's experiments) holds up only the requests for that value."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str, ttl: float, compute: Callable[[], Any]) -> Any:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._values.get(key)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1]
            value = compute()
            self._values[key] = (time.monotonic(), value)
            return value

    def clear(self) -> None:
        with self._guard:
            self._values.clear()
