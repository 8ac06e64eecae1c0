"""The storage initializer: the step that fetches a job's model and dataset into its workspace.

`python -m kubetune.storage_initializer --spec JOBSPEC.json --workspace DIR`

    initialize.py      the orchestration: staging, lock, atomic moves, completion marker
    model_fetch.py     model files from the Hub, a local folder or S3
    dataset_fetch.py   datasets from the Hub, S3 or local files, as one DatasetDict
    mixing.py          a dataset mix: every dataset fetched, columns checked, mixed
    s3_fetch.py        S3 client, object resolution, parallel downloads
    errors.py          the one error type it reports
    constants.py       Kubeflow V1's names of the workspace paths

The fetch code depends on `kubetune.contract` only. `hugging_face.py`, `s3.py` and `local.py`
are the seed's import paths of the parameter classes (which live in `kubetune.params`).
"""
