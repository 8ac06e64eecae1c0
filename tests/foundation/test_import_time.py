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
