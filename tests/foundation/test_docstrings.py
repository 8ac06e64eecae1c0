"""Every public function, class, method and property of kubetune says what it is for (what it
returns and raises, where that is not plain from its name): a docstring of its own, or the one
of the method it overrides."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "kubetune"


def modules() -> list[str]:
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def undocumented() -> list[str]:
    found = []
    for name in modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not inspect.getdoc(obj):
                found.append(f"{name}.{attr}")
            if inspect.isclass(obj):
                for member_name, member in vars(obj).items():
                    if member_name.startswith("_"):
                        continue
                    if isinstance(member, classmethod | staticmethod):
                        member = member.__func__
                    if not (inspect.isfunction(member) or isinstance(member, property)):
                        continue
                    if not inspect.getdoc(getattr(obj, member_name)) and not _inherited(
                        obj, member_name
                    ):
                        found.append(f"{name}.{attr}.{member_name}")
    return found


def _inherited(cls: type, member: str) -> bool:
    """Whether a base class documents `member` (an override keeps the base's contract)."""
    for base in cls.__mro__[1:]:
        found = base.__dict__.get(member)
        if found is not None and inspect.getdoc(found):
            return True
    return False


def test_every_public_name_has_a_docstring() -> None:
    assert undocumented() == []
