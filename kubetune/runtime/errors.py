"""The error type for problems the user can fix (bad column names, missing marker, bad arguments)."""

from __future__ import annotations


class TrainerError(Exception):
    """A user-fixable problem; reported as one clear line, without a traceback."""
