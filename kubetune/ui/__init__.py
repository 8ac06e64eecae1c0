"""`kubetune ui`: a web dashboard of the jobs of one backend, with live progress, loss curves,
logs, outputs and job creation from job YAML.

    source.py    the one module that reads kubetune's jobs (through the Backend interface)
    views.py     what the page shows of a job, computed from plain data
    security.py  token, Host and CSRF checks, security headers
    app.py       the Starlette app: page, JSON API, event streams
    server.py    uvicorn, in a thread or until Ctrl+C
    static/      the page, its script and styles, and uPlot (MIT, vendored)

Needs the `ui` extra: pip install 'kubetune[ui]'.
"""
