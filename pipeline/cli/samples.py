"""``pipeline sample-album``: the demo's album from public-domain photos that ship in packages."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import UserError, app


@app.command("sample-album")
def sample_album(
    folder: Annotated[Path, typer.Argument(help="Where to write the album")],
    references: Annotated[
        Path | None, typer.Option("--references", help="Where to write the two reference photos")
    ] = None,
) -> None:
    """Build a small album from public-domain photos that ship in packages (Eileen Collins, Grace Hopper).

    Nothing is left behind when it fails: folders it created are removed again.
    """
    from pipeline.photos.files import IMAGE_SUFFIXES

    refs_folder = references or folder.parent / (folder.name + "-references")
    for target in (folder, refs_folder):
        if target.exists() and not target.is_dir():
            raise UserError(f"{target} is a file; sample-album writes a folder of photos: give a folder")
        if not target.exists() and target.suffix.lower() in IMAGE_SUFFIXES:
            raise UserError(
                f"{target} looks like a photo's name; sample-album writes a folder of photos: give a folder"
            )
    from pipeline.datasets.sample_album import build_sample_album

    created = [target for target in (folder, refs_folder) if not target.exists()]
    try:
        refs = build_sample_album(folder, refs_folder)
    except BaseException:
        for target in created:
            shutil.rmtree(target, ignore_errors=True)
        raise
    for name, path in refs.items():  # machine-readable: NAME<TAB>REFERENCE per line
        sys.stdout.write(f"{name}\t{path}\n")
