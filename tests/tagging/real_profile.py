"""A real profile with one behaviour changed, for the tagging tests' failure cases."""

from __future__ import annotations

from typing import Any

from pipeline.profiles import Profile


class RealProfile(Profile):
    """Delegates everything to the ``real`` profile; subclasses override what they change."""

    def __init__(self, real: Profile) -> None:
        self.real = real
        self.name = real.name
        self.needs_pixels_to_describe = real.needs_pixels_to_describe

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.real, attr)

    @property
    def model_version(self) -> str:
        return self.real.model_version

    def recognition_scores(self, images: Any, people: Any) -> Any:
        return self.real.recognition_scores(images, people)

    def describe(self, scenes: Any, questions: Any) -> Any:
        return self.real.describe(scenes, questions)
