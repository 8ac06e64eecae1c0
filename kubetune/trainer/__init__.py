"""The training runtime run in every worker process (`torchrun ... -m kubetune.trainer`).

Entry points: `kubetune.trainer.cli.main` (the command line) and `kubetune.trainer.run.run`.
Task modules live in `kubetune.trainer.tasks`, one per transformer type.
"""
