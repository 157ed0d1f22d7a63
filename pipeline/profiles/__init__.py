"""Model profiles: ``faces`` (CPU, offline), ``plvm`` (DINOv2 + Aligner + LLaVA), ``tiny`` (tests)."""

from __future__ import annotations

import threading

from pipeline.config import Settings
from pipeline.profile_names import PROFILE_NAMES
from pipeline.profiles.base import Description, EnrolledPerson, PeopleIndex, Profile, Scene

__all__ = [
    "Description",
    "EnrolledPerson",
    "PeopleIndex",
    "Profile",
    "Scene",
    "get_profile",
    "make_profile",
    "profile_type",
    "profile_type_that",
    "profiles_that",
]

_lock = threading.Lock()
_cache: dict[tuple[str, int], Profile] = {}


def profile_type(name: str) -> type[Profile]:
    """The class of profile ``name`` (``faces``, ``plvm``, ``tiny``): ask it for its capabilities
    (:attr:`Profile.answers_questions`, ...) without building it or loading any model."""
    if name == "faces":
        from pipeline.profiles.faces import FacesProfile

        return FacesProfile
    from pipeline.profiles.plvm import PlvmProfile

    return PlvmProfile


def profile_type_that(capability: str, preferred: str) -> type[Profile]:
    """The class of profile ``preferred`` when it has ``capability`` (a boolean class attribute of
    :class:`Profile`), else of the first profile in the registry that has it: for commands that
    work whatever profile is configured (``pipeline models pull / verify-aligner / tiny``).
    Raises LookupError when no profile has it."""
    for name in (preferred, *PROFILE_NAMES):
        kind = profile_type(name)
        if getattr(kind, capability):
            return kind
    raise LookupError(f"no profile has {capability!r}")


#: Profiles a message never suggests first-hand: their models are random (tests only).
TEST_ONLY = ("tiny",)


def profiles_that(capability: str) -> str:
    """Which profiles have ``capability`` (a boolean class attribute of :class:`Profile`, e.g.
    ``"answers_questions"``), as a message tells the user to choose one: ``"the plvm profile
    (--profile plvm / PIPELINE_PROFILE=plvm) or the tiny test profile"``."""
    names = [name for name in PROFILE_NAMES if getattr(profile_type(name), capability)]
    phrases = [
        f"the {name} test profile"
        if name in TEST_ONLY
        else f"the {name} profile (--profile {name} / PIPELINE_PROFILE={name})"
        for name in names
    ]
    if not phrases:
        return "no profile"
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} or {phrases[-1]}"


def make_profile(settings: Settings) -> Profile:
    """A new profile object for ``settings.profile`` (models load lazily on first use)."""
    if settings.profile == "faces":
        from pipeline.profiles.faces import FacesProfile

        return FacesProfile()
    from pipeline.profiles.plvm import PlvmProfile

    return PlvmProfile(settings)


def get_profile(settings: Settings) -> Profile:
    """The process-wide profile for these settings (one per process and profile name)."""
    import os

    key = (settings.profile, os.getpid())
    with _lock:
        profile = _cache.get(key)
        if profile is None:
            profile = make_profile(settings)
            _cache[key] = profile
        return profile
