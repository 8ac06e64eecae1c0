"""The local backend: jobs run as processes on this machine under a detached supervisor.

`backend.py` (LocalBackend), `jobdir.py` (job directory layout and status file),
`supervisor.py` (the process that runs a job), `launch.py` (command lines and resources),
`processes.py` (finding and stopping a job's processes), `logs.py` (reading and following logs),
`pods.py` (a job seen as the Training Operator would show it: a PyTorchJob and its pods),
`function_jobs.py` (the package step and the program of `create_job(train_func=...)` jobs).
"""
