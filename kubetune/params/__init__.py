"""What a user asks for: the parameter classes of a job (the seed's API), the rules on their
values, and the one place they become a JobSpec.

    hugging_face.py   HuggingFaceModelParams, HuggingFaceDatasetParams, HuggingFaceTrainerParams
    s3.py             S3DatasetParams
    local.py          LocalDatasetParams
    mix.py            DatasetMix, MixedDataset: several datasets trained on as one
    validation.py     the checks on single values (names, bounds, quantities, split expressions)
    job.py            train()'s arguments -> JobSpec and secrets (the job-level rules, run once)

Depends on `kubetune.contract` only. The seed's import paths
(`kubetune.storage_initializer.hugging_face`, `.s3`, `.local`) re-export these classes.
"""
