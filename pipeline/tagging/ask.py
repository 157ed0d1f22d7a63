"""``pipeline ask``: a personalized answer about one photo."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import PipelineError


def mentioned_people(question: str, names: list[str]) -> list[str]:
    """Enrolled names that appear in the question as whole words (case-insensitive), in order."""
    hits = []
    for name in names:
        match = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", question, flags=re.IGNORECASE)
        if match:
            hits.append((match.start(), name))
    return [name for _, name in sorted(hits)]


def ask_about(settings: Settings, image: Path, question: str) -> tuple[str, list[str], bool]:
    """Answer ``question`` about ``image`` with the per-person data of the people it names.

    Returns (answer, names used, whether the weights are random). Raises
    :class:`~pipeline.errors.PipelineError` at once when the profile cannot answer questions.
    """
    from pipeline.people.index import load_people_index
    from pipeline.photos.decode import decode_photo
    from pipeline.profiles import get_profile
    from pipeline.store.db import ensure_schema, session_scope

    profile = get_profile(settings)
    if not profile.answers_questions:
        raise PipelineError(
            f"the {profile.name} profile cannot answer questions; use a profile that can "
            "(the README's Profiles section lists them)"
        )
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        index = load_people_index(session, settings, profile)
    by_name = {p.name: p for p in index.people}
    used = mentioned_people(question, list(by_name))
    decoded = decode_photo(image, settings.max_image_pixels)
    answer = profile.answer(decoded.image, question, [by_name[n] for n in used])
    return answer, used, profile.random_weights
