"""The contract between the client and the processes that run a job.

Everything that crosses a process boundary is defined here, once: the job record (`spec`), the
condition rule (`conditions`), the records the processes write for each other (`records`), the
secret environment variables (`secrets`), the workspace layout (`layout`), checkpoint ownership
(`checkpoints`), model URIs (`uris`), Kubernetes quantities and cores (`quantities`) and the way
problems are reported (`problems`).

The package imports only the standard library (a third-party library at most inside the one
function that needs it) and nothing of kubetune outside itself, so the client, the backends, the
storage initializer and the runtime can all depend on it without depending on each other.
"""
