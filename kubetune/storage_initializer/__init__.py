"""Parameter classes for models and datasets, and the step that fetches them into a job workspace.

`python -m kubetune.storage_initializer --spec JOBSPEC.json --workspace DIR`
"""
