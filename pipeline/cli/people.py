"""``pipeline enroll``, ``pipeline people ...`` and ``pipeline correct``: who is enrolled, and fixing names."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.app import app, open_session, out, report_requeued, settings

people_app = typer.Typer(help="List, rename, merge and forget enrolled people.", invoke_without_command=True)
app.add_typer(people_app, name="people")


@app.command()
def enroll(
    name: Annotated[str, typer.Option("--name", "-n", help="The person's name (unique, ignoring case)")],
    images: Annotated[
        list[Path],
        typer.Argument(help="Reference photo(s) with the person's face", exists=True, dir_okay=False, readable=True),
    ],
    face: Annotated[
        int | None, typer.Option("--face", help="Which face to use when a photo has several (0 = leftmost)")
    ] = None,
) -> None:
    """Enroll a person from one or more reference photos (adds references if the name exists)."""
    from pipeline.people.enrolment import enroll as do_enroll

    with open_session() as session:
        result = do_enroll(session, settings(), name, images, face)
    verb = "enrolled" if result.created else "updated"
    dup = f", {result.skipped_duplicates} already known" if result.skipped_duplicates else ""
    out.print(f"{verb} {result.name} (id {result.person_id}): {result.added_references} reference(s) added{dup}")
    report_requeued(result.requeued_photo_ids)


@people_app.callback()
def people_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List people with their reference and photo counts."""
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.people.registry import list_people

    with open_session() as session:
        rows = list_people(session)
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table("name", "references", "photos", "enrolled")
    for row in rows:
        table.add_row(str(row["name"]), str(row["references"]), str(row["photos"]), str(row["enrolled"])[:19])
    out.print(table if rows else "nobody enrolled yet: `pipeline enroll --name NAME photo.jpg`")


def _people_change(operation: str, *args: str) -> list[int]:
    """Run ``pipeline.people.changes.<operation>(session, *args)`` in one transaction; returns
    the re-queued photo ids."""
    from pipeline.people import changes

    with open_session() as session:
        return list(getattr(changes, operation)(session, *args))


@people_app.command("rename")
def people_rename(old: str, new: str) -> None:
    """Rename a person (captions that use the name are redone)."""
    ids = _people_change("rename", old, new)
    out.print(f"renamed {old} -> {new}")
    report_requeued(ids)


@people_app.command("merge")
def people_merge(source: str, target: str) -> None:
    """Merge SOURCE into TARGET (references and tagged faces move; SOURCE is removed)."""
    ids = _people_change("merge", source, target)
    out.print(f"merged {source} into {target}")
    report_requeued(ids)


@people_app.command("forget")
def people_forget(name: str) -> None:
    """Forget a person: remove references and embeddings, un-tag their faces."""
    ids = _people_change("forget", name)
    out.print(f"forgot {name}")
    report_requeued(ids)


@app.command()
def correct(
    face_id: Annotated[int, typer.Argument(help="faces.id (photo_people.face_id)")],
    name: Annotated[str | None, typer.Option("--name", help="This face is NAME")] = None,
    not_name: Annotated[str | None, typer.Option("--not", help="This face is not NAME")] = None,
    reference: Annotated[
        bool, typer.Option("--reference", help="With --name: also make this face one of NAME's references")
    ] = False,
) -> None:
    """Correct one face's name (`pipeline faces` lists face ids); the correction outranks the model from then on."""
    from pipeline.people.changes import correct_face
    from pipeline.people.references import correct_as_reference

    if reference and name is None:
        raise typer.BadParameter("--reference needs --name (the person the face becomes a reference of)")
    with open_session() as session:
        if reference and name is not None:
            ids = correct_as_reference(session, settings(), face_id, name)
        else:
            ids = correct_face(session, face_id, name, not_name)
    said = f"is {name}" if name else f"is not {not_name}"
    out.print(f"face {face_id}: {said}" + (" (now a reference)" if reference else ""))
    report_requeued(ids)


@people_app.command("show")
def people_show(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A person's references with their source (enrolment, correction, cluster)."""
    from pipeline.people.references import list_references

    with open_session() as session:
        person, refs = list_references(session, name)
    if as_json:
        rows = [asdict(r) for r in refs]
        out.print_json(json.dumps({"id": person.id, "name": person.name, "references": rows}, default=str))
        return
    table = Table("reference", "source", "face", "photo", "added", title=f"{person.name} (id {person.id})")
    for r in refs:
        face = str(r.face_id) if r.face_id is not None else ""
        table.add_row(str(r.id), r.source, face, r.original_path, str(r.created_at)[:19])
    out.print(table)
