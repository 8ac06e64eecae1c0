"""`kubetune ui`: a web dashboard of the jobs and experiments of one backend, with live progress,
loss curves, logs, outputs, job creation from job YAML, and each experiment's trials.

    source.py    the one module that reads kubetune's jobs (through the Backend interface)
    experiments.py  the one that reads its experiments (through kubetune.katib's ExperimentBackend)
    views.py     what the page shows of a job, computed from plain data
    security.py  token, Host and CSRF checks, security headers
    app.py       the Starlette app: page, JSON API, event streams
    server.py    uvicorn, in a thread or until Ctrl+C
    static/      the page, its script and styles, and uPlot (MIT, vendored)

Needs the `ui` extra: pip install 'kubetune[ui]'.
"""
