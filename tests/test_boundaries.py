"""The sealed profile boundary: generic code asks a profile for a capability, never for its name,
and the worker's path (ingest, store, tagging, people, service, broker, photos, workers) does not
speak PLVM; every change of a photo's state goes through pipeline.store.states. The checks read
the source files as text; they fail on any new leak."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEALED = ("pipeline/profiles", "pipeline/plvm")
NAME_COMPARISON = re.compile(r"""profile\.name\s*[!=]=|[!=]=\s*profile\.name\b""")
GENERIC = [
    "pipeline/ingest",
    "pipeline/store",
    "pipeline/tagging",
    "pipeline/people",
    "pipeline/service",
    "pipeline/broker",
    "pipeline/photos",
    "workers",
]
PLVM_WORDS = re.compile(r"plvm|concept tokens?\b", re.IGNORECASE)


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def test_no_profile_name_comparison_outside_the_profiles() -> None:
    leaks = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in _sources("pipeline", "workers")
        if not str(path.relative_to(REPO)).startswith(SEALED)
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if NAME_COMPARISON.search(line)
    ]
    assert leaks == [], "ask the profile for a capability instead:\n" + "\n".join(leaks)


def test_no_plvm_word_on_the_workers_path() -> None:
    leaks = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in _sources(*GENERIC)
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if PLVM_WORDS.search(line)
    ]
    assert leaks == [], "PLVM belongs in pipeline/plvm and pipeline/profiles:\n" + "\n".join(leaks)


def test_the_check_finds_a_leak() -> None:
    assert NAME_COMPARISON.search('wants = profile.name != "faces"')
    assert PLVM_WORDS.search("item.plvm = scores") and PLVM_WORDS.search("they delimit concept tokens")
    assert not PLVM_WORDS.search("refresh_concept(session)")


STATE_WRITE = re.compile(r"""update\(Photo\)|\.(state|work)\s*=[^=]|\b(state|work)\s*=\s*["']""")


def test_every_photo_state_change_goes_through_the_states_module() -> None:
    owner = REPO / "pipeline" / "store" / "states.py"
    leaks = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in _sources("pipeline", "workers")
        if path != owner and not str(path.relative_to(REPO)).startswith("pipeline/plvm")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if STATE_WRITE.search(line)
    ]
    assert leaks == [], "use pipeline.store.states for this transition:\n" + "\n".join(leaks)
    assert STATE_WRITE.search('update(Photo).values(state="queued")') and STATE_WRITE.search("row.state = x")
    assert not STATE_WRITE.search("if row.state == PhotoState.MISSING:")
