"""The sealed profile boundary: generic code asks a profile for a capability, never for its name,
and nothing outside pipeline/profiles and pipeline/plvm speaks PLVM (no import of pipeline.plvm, no
PLVM word in identifiers, comments, docstrings or help texts) but for a short allow-list of names
that are data; every change of a photo's state goes through pipeline.store.states. The checks read
the source files as text; they fail on any new leak."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEALED = ("pipeline/profiles/", "pipeline/plvm/")
# ``profile.name == "faces"``, ``settings.profile != "plvm"``, ``s.profile in ("plvm", "tiny")``, either side
PROFILE_NAME = r"(?:\.profile|\bprofile\.name)\b"
NAME_COMPARISON = re.compile(rf"{PROFILE_NAME}\s*(?:[!=]=|(?:not\s+)?in\s*[(\[{{])|[!=]=\s*[\w.]*{PROFILE_NAME}")
PLVM_WORDS = re.compile(r"plvm|concept tokens?\b", re.IGNORECASE)
#: Lines outside the sealed packages that must spell a profile's or an extra's name as data:
#: (file, text the stripped line starts with) -> why it stays.
ALLOWED = {
    ("pipeline/profile_names.py", 'ProfileName = Literal["faces", "plvm", "tiny"]'): (
        "the one list of profile names: settings, the CLI's help and --profile check read it"
    ),
    ("pipeline/cli/failures.py", 'TORCH_EXTRA = "plvm"'): (
        "the pip extra's name in pyproject.toml, printed in the install hint"
    ),
    ("pipeline/config.py", "plvm_max_batch: int = Field("): (
        "a setting users set by name (PIPELINE_PLVM_MAX_BATCH); renaming it would break their configs"
    ),
}


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


def _allowed(path: str, line: str) -> bool:
    return any(path == where and line.strip().startswith(text) for where, text in ALLOWED)


def test_no_plvm_word_outside_the_sealed_packages() -> None:
    leaks = [
        f"{rel}:{n}: {line.strip()}"
        for path in _sources("pipeline", "workers")
        if not (rel := str(path.relative_to(REPO))).startswith(SEALED)
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if PLVM_WORDS.search(line) and not _allowed(rel, line)
    ]
    assert leaks == [], "PLVM belongs in pipeline/plvm and pipeline/profiles:\n" + "\n".join(leaks)


def test_every_allowed_plvm_word_is_still_there_and_still_needed() -> None:
    for (where, text), why in ALLOWED.items():
        assert why and PLVM_WORDS.search(text), (where, text)
        lines = [line for line in (REPO / where).read_text().splitlines() if line.strip().startswith(text)]
        assert len(lines) == 1, f"{where}: allowed line {text!r} is gone (or repeated); update ALLOWED"


def test_the_check_finds_a_leak() -> None:
    assert NAME_COMPARISON.search('wants = profile.name != "faces"')
    assert NAME_COMPARISON.search('if settings.profile == "faces":') and NAME_COMPARISON.search('"tiny" == s.profile')
    assert NAME_COMPARISON.search('if s.profile not in ("plvm", "tiny"):')
    assert NAME_COMPARISON.search("ok = settings.profile in {'plvm'}")
    assert not NAME_COMPARISON.search("kind = profile_type(settings.profile)")
    assert not NAME_COMPARISON.search("if profile_type(s.profile).trainable:")
    assert PLVM_WORDS.search("item.plvm = scores") and PLVM_WORDS.search("they delimit concept tokens")
    assert not PLVM_WORDS.search("refresh_concept(session)")
    assert PLVM_WORDS.search("from pipeline.plvm.engine import PlvmEngine")
    assert not _allowed("pipeline/config.py", 'profile = "plvm"')
    assert _allowed("pipeline/cli/failures.py", '    TORCH_EXTRA = "plvm"')


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
