"""The enrolled people as a worker sees them, cached until the enrolment version changes."""

from __future__ import annotations

import threading

import numpy as np
from sqlmodel import Session, col, select

from pipeline.config import Settings
from pipeline.people.enrolment import refresh_concept
from pipeline.people.registry import enrolment_version
from pipeline.profiles import EnrolledPerson, PeopleIndex, Profile
from pipeline.store.models import Concept, Person, Reference

_lock = threading.Lock()
_cached: dict[tuple[str, str], PeopleIndex] = {}


def load_people_index(session: Session, settings: Settings, profile: Profile) -> PeopleIndex:
    """Everyone enrolled now, with face references and (profiles that encode people) their data.

    Concepts are read from ``person_concepts`` for the profile's model version; a person enrolled
    under another profile gets theirs computed once here and stored (side effect: commits).
    The result is cached per (database, profile version) until the enrolment version changes.
    """
    from pipeline.recognition.faces import embedding_from_bytes

    version = enrolment_version(session)
    key = (settings.db_url, profile.model_version)
    with _lock:
        cached = _cached.get(key)
        if cached is not None and cached.version == version:
            return cached
    people = session.exec(select(Person).order_by(col(Person.id))).all()
    refs: dict[int, list[np.ndarray]] = {}
    for ref in session.exec(select(Reference).order_by(col(Reference.id))).all():
        refs.setdefault(ref.person_id, []).append(embedding_from_bytes(ref.embedding))
    concepts: dict[int, Concept] = {}
    if profile.encodes_people:
        rows = session.exec(select(Concept).where(Concept.model_version == profile.model_version)).all()
        concepts = {c.person_id: c for c in rows}
        for person in people:
            if person.id not in concepts and refs.get(person.id or -1):
                row = refresh_concept(session, settings, person)
                if row is not None:
                    concepts[row.person_id] = row
        session.commit()
    enrolled = []
    for person in people:
        assert person.id is not None
        concept = None
        if person.id in concepts:
            c = concepts[person.id]
            concept = profile.decode_person(c.n_tokens, c.dim, c.tokens, c.lm_weight)
        embs = np.stack(refs[person.id]) if refs.get(person.id) else np.zeros((0, 128), np.float32)
        enrolled.append(EnrolledPerson(id=person.id, name=person.name, ref_embeddings=embs, concept=concept))
    index = PeopleIndex(version=version, people=enrolled)
    with _lock:
        _cached[key] = index
    return index
