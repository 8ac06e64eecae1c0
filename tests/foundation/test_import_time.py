"""`import kubetune` stays light: no torch or transformers until a params class or the client is
used; the seed's params paths do not load the storage initializer's fetch code; the contract loads
nothing but the standard library."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def loaded_after(statement: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after `statement`."""
    code = f"import sys; {statement}; print(','.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.strip().split(","))


def test_import_kubetune_loads_no_heavy_modules() -> None:
    heavy = {"torch", "transformers", "peft", "datasets", "boto3", "kubernetes"}
    assert loaded_after("import kubetune") & heavy == set()


def test_the_contract_loads_only_the_standard_library() -> None:
    modules = loaded_after(
        "import kubetune.contract.spec, kubetune.contract.records, kubetune.contract.layout, "
        "kubetune.contract.checkpoints, kubetune.contract.quantities, kubetune.contract.secrets"
    )
    at_start = loaded_after("pass")  # site hooks (an editable install's finder, ...)
    assert modules - at_start - set(sys.stdlib_module_names) == {"kubetune"}


def test_the_seed_params_paths_load_no_fetch_code() -> None:
    code = (
        "import sys; import kubetune.storage_initializer.hugging_face, "
        "kubetune.storage_initializer.s3, kubetune.storage_initializer.local; "
        "print(','.join(m for m in sys.modules if m.startswith('kubetune.storage_initializer.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(out.stdout.strip().split(",")) == {
        "kubetune.storage_initializer.hugging_face",
        "kubetune.storage_initializer.s3",
        "kubetune.storage_initializer.local",
    }


def test_public_names_are_the_objects_of_their_modules() -> None:
    import kubetune

    public = kubetune._EXPORTS
    assert set(kubetune.__all__) == {"__version__", *public}
    assert public["JobSpec"] == "kubetune.contract.spec"  # the contract's, not a copy
    assert public["HuggingFaceModelParams"] == "kubetune.params.hugging_face"
    for name, module in public.items():
        assert getattr(kubetune, name) is getattr(importlib.import_module(module), name), name
    with pytest.raises(AttributeError, match="no attribute 'Trainer'"):
        _ = kubetune.Trainer


def test_import_kubetune_katib_loads_neither_katib_nor_optuna() -> None:
    """`kubetune.katib` and its client module import nothing heavy: Katib's SDK (the Kubernetes
    client, gRPC, protobuf) and Optuna come with the first call that needs them."""
    code = (
        "import sys, kubetune.katib; "
        "from kubetune.katib import KatibClient, TrainerResources, search, report_metrics; "
        "heavy = [m for m in ('kubeflow.katib', 'optuna', 'grpc', 'google.protobuf', 'kubernetes', 'torch', 'transformers') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import kubetune.katib loaded {out.stdout.strip()}"
