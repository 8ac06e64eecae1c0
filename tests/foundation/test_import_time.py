"""`import kubetune` stays light: no torch or transformers until a params class or the client is used."""

from __future__ import annotations

import subprocess
import sys


def test_import_kubetune_loads_no_heavy_modules() -> None:
    code = (
        "import sys, kubetune; "
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'datasets', 'boto3', 'kubernetes') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import kubetune loaded {out.stdout.strip()}"


def test_public_names_resolve_lazily() -> None:
    import kubetune

    for name in kubetune.__all__:
        assert getattr(kubetune, name) is not None, name


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
