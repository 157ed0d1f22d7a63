"""SQLModel tables. Table and column names are user interface: people write SQL against them.

Embeddings are stored as raw little-endian bytes (float32 for face embeddings, float16 for a
profile's per-person tensors); their shapes are in the docstrings and the README.
"""

import os
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from pipeline.store.state_names import PhotoState, WorkKind, check_sql

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)


def core_table(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel table model, for set-based statements (multi-row INSERT,
    executemany UPDATE, RETURNING) that skip building ORM objects."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]  # SQLModel sets it on table models


def _ts(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class Person(SQLModel, table=True):
    """An enrolled person. ``name_key`` is the NFC, case-folded name: unique ignoring case and Unicode form."""

    __tablename__ = "people"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    name_key: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Reference(SQLModel, table=True):
    """One reference photo of a person: its face and SFace embedding (128 float32)."""

    __tablename__ = "reference_images"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="people.id", index=True)
    sha256: str = Field(max_length=64, index=True)
    stored_path: str = Field(sa_column=Column(Text, nullable=False))
    original_path: str = Field(sa_column=Column(Text, nullable=False))
    x: float
    y: float
    w: float
    h: float
    det_score: float
    embedding: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: Where the reference came from: ``enrolment`` (pipeline enroll), ``correction`` (a user
    #: confirmed a face: pipeline correct --reference) or ``cluster`` (pipeline clusters name);
    #: for the last two, the face and photo it was taken from.
    source: str = Field(default="enrolment", max_length=20)
    face_id: int | None = None
    photo_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Cluster(SQLModel, table=True):
    """A group of unknown faces that look like one person (``pipeline clusters``).

    ``centroid_sum``: float32 bytes (128,), the sum of the member embeddings when the cluster was
    formed (its direction is the centroid new faces are compared with); ``n_faces`` counts
    members, joined ones included. ``status``: ``open`` (listed), ``ignored`` (strangers, hidden)
    or ``named`` (its faces now carry ``person_id``). No foreign key to ``people``: forgetting a
    person leaves the cluster's history.
    """

    __tablename__ = "clusters"
    id: int | None = Field(default=None, primary_key=True)
    n_faces: int = 0
    centroid_sum: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="open", max_length=20, index=True)
    person_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Concept(SQLModel, table=True):
    """A person's per-person data of a profile that encodes people (:meth:`Profile.encode_person`), for
    one model version, computed once at enrolment.

    ``tokens``: float16 bytes of shape (n_tokens, dim) (for example 17 x 4096);
    ``lm_weight``: float16 bytes of shape (dim,). Averaged over the person's references.
    """

    __tablename__ = "person_concepts"
    __table_args__ = (UniqueConstraint("person_id", "model_version"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="people.id", index=True)
    model_version: str = Field(max_length=200)
    n_tokens: int
    dim: int
    tokens: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    lm_weight: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class EnrolmentEvent(SQLModel, table=True):
    """Every change to who is enrolled; the highest id is the current enrolment version."""

    __tablename__ = "enrolment_events"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # enroll | forget | rename | merge | correct
    person_id: int | None = None
    detail: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Photo(SQLModel, table=True):
    """A photo file. ``state``: a :class:`PhotoState`, changed only by :mod:`pipeline.store.states`.

    ``sha256`` is the content hash (hex) of the kind ``hash_kind`` names: BLAKE3 for rows written
    since revision 0007, SHA-256 before (the column keeps its name for existing SQL).

    ``work`` (a :class:`WorkKind`) says what a worker must do: ``tag`` (decode, detect, match, describe) or ``rematch``
    (re-match stored face embeddings and redo what depends on the people present).
    ``enrolment_version`` is the enrolment state the current results were computed against.
    """

    __tablename__ = "photos"
    __table_args__ = (
        Index("ix_photos_state_queued_at", "state", "queued_at"),
        Index("ix_photos_state_done_at", "state", "done_at"),  # the web app's recent failures
        CheckConstraint(check_sql("state", PhotoState), name="state"),
        CheckConstraint(check_sql("work", WorkKind), name="work"),
    )
    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    # The file name's raw bytes when they are not UTF-8 (``path`` then shows each such byte as \xNN).
    path_bytes: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    sha256: str = Field(max_length=64, index=True)
    hash_kind: str = Field(
        default="blake3", sa_column=Column(String(16), nullable=False, server_default="sha256")
    )  # what ``sha256`` holds: "blake3" (rows since revision 0007) or "sha256"
    size: int
    mtime: float
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    state: str = Field(default=PhotoState.QUEUED.value, max_length=20, index=True)
    work: str = Field(default=WorkKind.TAG.value, max_length=20)
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    profile: str | None = Field(default=None, max_length=20)
    model_version: str | None = Field(default=None, max_length=200)
    enrolment_version: int | None = None
    claimed_by: str | None = Field(default=None, max_length=200)  # the task (Celery id) holding the claim
    claimed_owner: str | None = Field(default=None, max_length=200)  # its process: host/pid/start
    claimed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    queued_at: datetime | None = Field(default_factory=utcnow, sa_column=_ts(nullable=True))
    done_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())

    @property
    def file_path(self) -> str:
        """The path to open (see :func:`os_path`)."""
        return os_path(self.path, self.path_bytes)


def os_path(path: str, path_bytes: bytes | None) -> str:
    """The path of a ``photos`` row as the OS wants it: ``path``, or for a name whose bytes are not
    UTF-8 those bytes decoded the way Python names such files (``os.fsdecode``, surrogate escapes)."""
    return os.fsdecode(path_bytes) if path_bytes is not None else path


class Face(SQLModel, table=True):
    """A detected face. Box is relative to the (EXIF-rotated) image: x, y, w, h in [0, 1].

    ``embedding``: SFace 128 float32 bytes. ``match_score``: cosine to the named person's best
    reference. ``evidence_score``: the profile's recognition evidence for the named person (a
    probability that they are in the photo). ``user_set``: the name was set by a user and outranks
    the model. ``rejected_person_ids``: comma list of people a user said this face is not.
    ``photo_time``: set by database triggers (migration 0008), never by the code: the photo's time
    in seconds since the epoch (``taken_at``, else ``mtime``), NULL while the photo is missing; a
    person's photos newest first are a walk of one index.
    """

    __tablename__ = "faces"
    __table_args__ = (
        UniqueConstraint("photo_id", "idx"),
        Index("ix_faces_person_id_photo_time", "person_id", "photo_time", "photo_id"),  # a person's photos by time
    )
    id: int | None = Field(default=None, primary_key=True)
    photo_id: int = Field(foreign_key="photos.id", index=True)
    idx: int
    x: float
    y: float
    w: float
    h: float
    det_score: float
    embedding: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    person_id: int | None = Field(default=None, foreign_key="people.id", index=True)
    match_score: float | None = None
    evidence_score: float | None = None
    user_set: bool = False
    rejected_person_ids: str | None = Field(default=None, max_length=1000)
    photo_time: float | None = None
    cluster_id: int | None = Field(default=None, index=True)  # clusters.id of an unknown face


class PersonScore(SQLModel, table=True):
    """A profile's recognition evidence per photo and person, e.g. P("Yes") for "Is <person> in this photo?"."""

    __tablename__ = "person_scores"
    __table_args__ = (UniqueConstraint("photo_id", "person_id", "model_version"),)
    id: int | None = Field(default=None, primary_key=True)
    photo_id: int = Field(foreign_key="photos.id", index=True)
    person_id: int = Field(foreign_key="people.id", index=True)
    model_version: str = Field(max_length=200)
    score: float
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Caption(SQLModel, table=True):
    """One caption per photo and model version (replaced when recomputed).

    ``sort_key``: set by database triggers (migration 0003), never by the code: the photo's time
    (``taken_at``, else ``mtime``) and the caption id packed so that smaller means newer; the
    full-text index is ordered by it, which makes newest-first search stop after one page.
    ``relevance_key``: set by triggers too (migration 0013): the caption's word count, then
    ``sort_key``'s time, packed so that smaller means more relevant (fewest words first, ties newest
    first); relevance search walks its index the same way and stops after one page.
    """

    __tablename__ = "captions"
    __table_args__ = (
        UniqueConstraint("photo_id", "model_version"),
        Index("ix_captions_sort_key", "sort_key", unique=True),
        Index("ix_captions_relevance_key", "relevance_key", unique=True),
    )
    id: int | None = Field(default=None, primary_key=True)
    photo_id: int = Field(foreign_key="photos.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    profile: str = Field(max_length=20)
    model_version: str = Field(max_length=200)
    enrolment_version: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    sort_key: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    relevance_key: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class Answer(SQLModel, table=True):
    """Answer to one standard question for a photo and model version."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("photo_id", "model_version", "question"),)
    id: int | None = Field(default=None, primary_key=True)
    photo_id: int = Field(foreign_key="photos.id", index=True)
    question: str = Field(max_length=500)
    text: str = Field(sa_column=Column(Text, nullable=False))
    profile: str = Field(max_length=20)
    model_version: str = Field(max_length=200)
    enrolment_version: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
