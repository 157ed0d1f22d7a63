"""``pipeline sample-album``: the demo's album from public-domain photos that ship in packages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import app


@app.command("sample-album")
def sample_album(
    folder: Annotated[Path, typer.Argument(help="Where to write the album")],
    references: Annotated[
        Path | None, typer.Option("--references", help="Where to write the two reference photos")
    ] = None,
) -> None:
    """Build a small album from public-domain photos that ship in packages (Eileen Collins, Grace Hopper)."""
    from pipeline.datasets.sample_album import build_sample_album

    refs = build_sample_album(folder, references or folder.parent / (folder.name + "-references"))
    for name, path in refs.items():  # machine-readable: NAME<TAB>REFERENCE per line
        sys.stdout.write(f"{name}\t{path}\n")
