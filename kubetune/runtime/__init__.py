"""The training runtime run in every worker process (`torchrun ... -m kubetune.runtime`).

Entry points: `kubetune.runtime.cli.main` (the command line) and `kubetune.runtime.run.run`.
Task modules live in `kubetune.runtime.tasks`, one per transformer type.
"""
