"""``pipeline faces`` and ``pipeline clusters [name K --name N | ignore K]``: the faces of the album,
and the unknown ones grouped into people for naming."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.app import app, open_session, out, report_requeued, settings

clusters_app = typer.Typer(
    help="Unknown faces grouped into people: list (biggest first, with face crops), name, ignore.",
    invoke_without_command=True,
)
app.add_typer(clusters_app, name="clusters")


def _box(box: tuple[float, float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in box)


@app.command()
def faces(
    cluster: Annotated[int | None, typer.Option("--cluster", help="Only the faces of cluster K")] = None,
    unknown: Annotated[bool, typer.Option("--unknown", help="Only faces without a name")] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many rows")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List faces: id (for `pipeline correct`), photo, box (x y w h, relative), name or cluster."""
    from pipeline.people.clusters import list_faces

    with open_session() as session:
        rows = list_faces(session, cluster_id=cluster, unknown_only=unknown, limit=limit)
    if as_json:
        out.print_json(json.dumps([asdict(r) for r in rows]))
        return
    table = Table("face", "photo", "box (x y w h)", "name / cluster", "score")
    for r in rows:
        who = r.name or (f"cluster {r.cluster_id}" if r.cluster_id is not None else "unknown")
        score = f"{r.match_score:.2f}" if r.match_score is not None else ""
        table.add_row(str(r.id), r.photo_path, _box(r.box), who, score)
    out.print(table if rows else "no faces yet: `pipeline run FOLDER` tags photos")


@clusters_app.callback()
def clusters_list(
    ctx: typer.Context,
    crops: Annotated[
        Path | None,
        typer.Option("--crops", help="Folder for face crops to review (default: <data_dir>/clusters)"),
    ] = None,
    no_crops: Annotated[bool, typer.Option("--no-crops", help="Do not write face crops")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Also list ignored and named clusters")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Group unknown faces not yet in a cluster, then list clusters biggest first with example
    photos, and write face crops for review (cluster_K/face_ID.jpg)."""
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.people.clusters import list_clusters, update_clusters, write_cluster_crops

    s = settings()
    folder = (crops or s.data_dir / "clusters").expanduser()
    with open_session() as session:
        update = update_clusters(session)
        session.commit()
        rows = list_clusters(session, include_ignored=show_all)
        written = [] if no_crops else write_cluster_crops(session, folder, rows, s.max_image_pixels)
    if as_json:
        out.print_json(json.dumps({"update": asdict(update), "clusters": [asdict(r) for r in rows]}))
        return
    out.print(
        f"{update.joined} face(s) joined existing clusters, {update.created} new cluster(s) "
        f"({update.clustered} faces), {update.unclustered} face(s) alone"
    )
    table = Table("cluster", "faces", "status", "examples")
    for r in rows:
        status = r.status if r.person_name is None else f"{r.status}: {r.person_name}"
        table.add_row(str(r.id), str(r.size), status, "\n".join(r.examples))
    out.print(table if rows else "no clusters: every face is named, or alone")
    if written:
        out.print(f"wrote {len(written)} face crop(s) to {folder}")
    if rows:
        out.print("name one: `pipeline clusters name K --name NAME`; hide strangers: `pipeline clusters ignore K`")


@clusters_app.command("name")
def clusters_name(
    cluster: Annotated[int, typer.Argument(help="Cluster id (from `pipeline clusters`)")],
    name: Annotated[str, typer.Option("--name", "-n", help="A new or existing person")],
) -> None:
    """Name a cluster: its best faces become references, its faces get the name."""
    from pipeline.people.clusters import name_cluster

    with open_session() as session:
        result = name_cluster(session, settings(), cluster, name)
    verb = "new person" if result.created else "existing person"
    out.print(
        f"cluster {cluster} is {result.name} ({verb}, id {result.person_id}): {result.faces_named} face(s) named, "
        f"{result.references_added} reference(s) added"
    )
    report_requeued(result.requeued_photo_ids)


@clusters_app.command("ignore")
def clusters_ignore(cluster: Annotated[int, typer.Argument(help="Cluster id (from `pipeline clusters`)")]) -> None:
    """Hide a cluster of strangers from `pipeline clusters` from now on."""
    from pipeline.people.clusters import ignore_cluster

    with open_session() as session:
        ignore_cluster(session, cluster)
    out.print(f"cluster {cluster} is hidden (`pipeline clusters --all` still lists it)")
