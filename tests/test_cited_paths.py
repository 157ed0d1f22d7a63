"""Every repository path that the code, the tests, the scripts, the README and docs/ cite exists,
so someone who clones the project can follow each reference."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO

ROOTS = ("docs", "pipeline", "bench", "scripts", "workers", "migrations", "tests")
# A cited path: starts at a word boundary with one of ROOTS and a slash, runs over path characters.
CITED = re.compile(r"(?<![\w./~-])((?:" + "|".join(ROOTS) + r")/[\w./-]*)")
# Places that are written when something runs, not shipped (benchmark output).
GENERATED = ("bench/out",)
SOURCES = ("README.md", "pyproject.toml", "docker-compose.yml", "Dockerfile", ".env.example")
SOURCE_GLOBS = ("docs/**/*.md", "pipeline/**/*.py", "workers/**/*.py", "migrations/**/*.py", "tests/**/*.py")
SOURCE_GLOBS_MORE = ("bench/*.py", "scripts/*", ".ci/*")


def _sources() -> list[Path]:
    files = [REPO / name for name in SOURCES if (REPO / name).is_file()]
    for pattern in (*SOURCE_GLOBS, *SOURCE_GLOBS_MORE):
        files.extend(p for p in REPO.glob(pattern) if p.is_file() and "__pycache__" not in p.parts)
    return sorted(set(files) - {Path(__file__).resolve()})  # this file's examples are not citations


def cited_paths(text: str) -> set[str]:
    """The repository paths ``text`` cites (trailing punctuation and slashes removed)."""
    found = set()
    for match in CITED.finditer(text):
        path = match.group(1).rstrip(".-/")
        if path.count("/") == 0 or path.endswith("/..."):
            continue
        found.add(path)
    return found


def test_cited_paths_finds_paths_in_prose() -> None:
    text = "See docs/plvm.md, then pipeline/store/db.py. Not xdocs/a.md, not ~/docs/b.md; bench/x.py)"
    assert cited_paths(text) == {"docs/plvm.md", "pipeline/store/db.py", "bench/x.py"}


def test_every_cited_repository_path_exists() -> None:
    missing = []
    for source in _sources():
        text = source.read_text(encoding="utf-8", errors="replace")
        for path in sorted(cited_paths(text)):
            if path.startswith(GENERATED) or (REPO / path).exists():
                continue
            missing.append(f"{source.relative_to(REPO)} cites {path}")
    assert not missing, "cited paths that do not exist:\n" + "\n".join(missing)
