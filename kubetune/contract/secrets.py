"""The secrets of a job: the environment variables that carry them, and which process reads each.

Secrets never travel in the job spec, argv, logs or status: locally they reach each process as
environment variables, on Kubernetes through a Secret. The storage initializer reads the model
and dataset credentials; the runtime reads the credential fields of `TrainingArguments`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Read by the storage initializer.
MODEL_TOKEN_ENV = "KUBETUNE_HF_MODEL_TOKEN"
DATASET_TOKEN_ENV = "KUBETUNE_HF_DATASET_TOKEN"
S3_ACCESS_KEY_ENV = "KUBETUNE_S3_ACCESS_KEY"
S3_SECRET_KEY_ENV = "KUBETUNE_S3_SECRET_KEY"
INITIALIZER_SECRET_ENV_VARS = (
    MODEL_TOKEN_ENV,
    DATASET_TOKEN_ENV,
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
)
# The credential fields of TrainingArguments (field -> environment variable), read by the runtime
# (push_to_hub needs hub_token): never in the spec.
TRAINING_ARGUMENT_SECRETS = {"hub_token": "KUBETUNE_HUB_TOKEN"}
TRAINER_SECRET_ENV_VARS = tuple(TRAINING_ARGUMENT_SECRETS.values())
SECRET_ENV_VARS = (*INITIALIZER_SECRET_ENV_VARS, *TRAINER_SECRET_ENV_VARS)

REDACTED = "***"


def initializer_secrets(secrets: Mapping[str, str]) -> dict[str, str]:
    """The secrets of `secrets` that the storage initializer reads (model and dataset credentials)."""
    return {k: v for k, v in secrets.items() if k in INITIALIZER_SECRET_ENV_VARS}


def trainer_secrets(secrets: Mapping[str, str]) -> dict[str, str]:
    """The secrets of `secrets` that the runtime reads (the credential fields of TrainingArguments)."""
    return {k: v for k, v in secrets.items() if k in TRAINER_SECRET_ENV_VARS}


def training_argument_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """The runtime's side: the credential fields of TrainingArguments, by field name, from their
    secret variables in `environ` (those set and not empty)."""
    return {
        name: environ[env] for name, env in TRAINING_ARGUMENT_SECRETS.items() if environ.get(env)
    }


def without_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """`env` less every secret variable (SECRET_ENV_VARS)."""
    return {k: v for k, v in env.items() if k not in SECRET_ENV_VARS}


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The secret values present in `env` (the variables named in SECRET_ENV_VARS)."""
    return [env[name] for name in SECRET_ENV_VARS if env.get(name)]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of a secret replaced by REDACTED ('***')."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text
