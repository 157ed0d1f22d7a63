"""Model profiles: ``faces`` (CPU, offline), ``plvm`` (DINOv2 + Aligner + LLaVA), ``tiny`` (tests)."""

from __future__ import annotations

import threading

from pipeline.config import Settings
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
