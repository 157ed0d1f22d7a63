"""The model profiles' names: the one list of them.

Settings validate ``profile`` against :data:`ProfileName`, the CLI lists :data:`PROFILE_NAMES` in its
help and checks ``--profile`` against it, and :func:`pipeline.profiles.profile_type` maps each name
to its class (what the profile can do). Imports nothing, so the CLI's help stays fast.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["PROFILE_NAMES", "ProfileName", "listed"]

# The one place outside pipeline/profiles that names every profile (tests/test_boundaries.py allows it).
ProfileName = Literal["faces", "plvm", "tiny"]
PROFILE_NAMES: tuple[str, ...] = get_args(ProfileName)


def listed(names: tuple[str, ...] = PROFILE_NAMES) -> str:
    """The names as a reader lists them: ``"a, b or c"``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
