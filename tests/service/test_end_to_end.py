"""End to end as a user runs it: `pipeline enroll`, `pipeline run` (embedded Redis, a real Celery
worker process, the real watcher) on a temporary folder, then `pipeline sql` / `search`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests import images
from tests.conftest import PIPELINE, cli, copy_slowly, db_rows, flat, wait_for

pytestmark = pytest.mark.slow


def _rows(data_dir: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    return db_rows(data_dir, sql)


def _photo_table(data_dir: Path) -> dict[str, dict[str, object]]:
    rows = _rows(
        data_dir,
        "SELECT p.path, p.state, p.error, p.width, p.height, "
        "(SELECT group_concat(person_name, ',') FROM (SELECT person_name FROM photo_people pp "
        "  WHERE pp.photo_id = p.id ORDER BY box_x)), "
        "(SELECT text FROM captions c WHERE c.photo_id = p.id), "
        "(SELECT count(*) FROM faces f WHERE f.photo_id = p.id) FROM photos p",
    )
    return {
        Path(r[0]).name: {
            "state": r[1],
            "error": r[2],
            "size": (r[3], r[4]),
            "people": r[5] or "",
            "caption": r[6],
            "faces": r[7],
        }
        for r in rows
    }


def _start_run(folder: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    full = dict(os.environ)
    full.update(env)
    return subprocess.Popen(
        [*PIPELINE, "run", str(folder), *extra], env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _stop_run(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    return output


@pytest.fixture
def env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}


def test_enroll_run_and_query(tmp_path: Path, env: dict[str, str], data_dir: Path) -> None:
    a, g, c = images.astronaut(), images.grace_hopper(), images.camera()
    refs = tmp_path / "refs"
    eileen_ref = images.save_jpeg(images.crop_around_face(a, images.ASTRONAUT_FACE, 0.5), refs / "eileen.jpg")
    grace_ref = images.save_jpeg(images.crop_around_face(g, images.GRACE_HOPPER_FACE, 0.5), refs / "grace.jpg")
    assert "enrolled Eileen" in cli("enroll", "--name", "Eileen", str(eileen_ref), env=env).stdout
    assert "enrolled Grace" in cli("enroll", "--name", "Grace", str(grace_ref), env=env).stdout

    album = tmp_path / "album"
    album.mkdir()
    staging = tmp_path / "staging"
    run = _start_run(album, env)
    try:
        time.sleep(3)  # let the worker and watcher start; photos arrive while running
        images.save_jpeg(a, album / "eileen.jpg")
        images.save_jpeg(images.flip(g), album / "grace-flipped.jpg")
        images.save_jpeg(images.side_by_side(a, g), album / "both.jpg")
        images.save_png(images.side_by_side(g, images.flip(a)), album / "both-reversed.png")
        images.save_jpeg(images.crop_around_face(a, images.ASTRONAUT_FACE, 0.25), album / "eileen-crop.jpg")
        images.save_jpeg(images.side_by_side(images.side_by_side(a, g), c), album / "three.jpg")
        images.save_jpeg(images.no_face(), album / "coffee.jpg")
        (sub := album / "2024" / "summer").mkdir(parents=True)
        images.save_jpeg(c, sub / "stranger.jpg")
        good = images.save_jpeg(g, staging / "grace.jpg")
        (album / "corrupt.jpg").write_bytes(good.read_bytes()[:4000])
        (album / "empty.jpg").write_bytes(b"")
        (album / "notes.jpg").write_text("shopping list: milk, eggs\n" * 40)
        (album / "readme.txt").write_text("not a photo")
        images.save_jpeg(a, album / ".hidden.jpg")
        partial = album / "download.jpg.part"
        shutil.copyfile(good, partial)
        partial.rename(album / "download.jpg")
        copy_slowly(good, album / "slow.jpg", chunks=6, pause=0.25)
        from PIL import Image

        rotated = Image.fromarray(images.grace_hopper()).rotate(90, expand=True)
        exif = Image.Exif()
        exif[0x0112] = 6
        rotated.save(album / "sideways.jpg", exif=exif, quality=90)

        expected = {
            "eileen.jpg": ("done", "Eileen", "Eileen."),
            "grace-flipped.jpg": ("done", "Grace", "Grace."),
            "both.jpg": ("done", "Eileen,Grace", "Eileen and Grace."),
            "both-reversed.png": ("done", "Grace,Eileen", "Grace and Eileen."),
            "eileen-crop.jpg": ("done", "Eileen", "Eileen."),
            "three.jpg": ("done", "Eileen,Grace", "Eileen and Grace with 1 other person."),
            "coffee.jpg": ("done", "", "No people."),
            "stranger.jpg": ("done", "", "1 unknown person."),
            "download.jpg": ("done", "Grace", "Grace."),
            "slow.jpg": ("done", "Grace", "Grace."),
            "sideways.jpg": ("done", "Grace", "Grace."),
            "corrupt.jpg": ("failed", "", None),
            "empty.jpg": ("failed", "", None),
            "notes.jpg": ("failed", "", None),
        }

        def finished() -> bool:
            table = _photo_table(data_dir)
            return set(expected) <= set(table) and all(table[n]["state"] in ("done", "failed") for n in expected)

        wait_for(finished, timeout=120, message="all photos done or failed")
        time.sleep(1.5)
        table = _photo_table(data_dir)
        assert set(table) == set(expected), "temp, hidden and non-image files must not become photos"
        for name, (state, people, caption) in expected.items():
            row = table[name]
            assert (row["state"], row["people"], row["caption"]) == (state, people, caption), (name, row)
            if state == "failed":
                assert row["error"], f"{name} failed without a reason"
        assert "empty" in str(table["empty.jpg"]["error"]).lower()
        assert table["sideways.jpg"]["size"] == (512, 600), "EXIF orientation honoured"
        assert table["slow.jpg"]["faces"] == 1

        # Moves keep results; deletions mark photos missing.
        (album / "moved").mkdir()
        (album / "eileen.jpg").rename(album / "moved" / "eileen-renamed.jpg")
        (album / "coffee.jpg").unlink()

        def moved() -> bool:
            t = _photo_table(data_dir)
            return "eileen-renamed.jpg" in t and t.get("coffee.jpg", {}).get("state") == "missing"

        wait_for(moved, timeout=30, message="move and delete seen")
        t = _photo_table(data_dir)
        assert "eileen.jpg" not in t
        assert (t["eileen-renamed.jpg"]["state"], t["eileen-renamed.jpg"]["caption"]) == ("done", "Eileen.")

        # Plain SQL and search, as a user would, while the pipeline runs.
        result = cli(
            "sql",
            "--json",
            "SELECT photo_path, person_name FROM photo_people WHERE person_name = 'Grace' ORDER BY photo_path",
            env=env,
        )
        grace_photos = {Path(r["photo_path"]).name for r in json.loads(result.stdout)}
        assert grace_photos == {
            "grace-flipped.jpg",
            "both.jpg",
            "both-reversed.png",
            "three.jpg",
            "download.jpg",
            "slow.jpg",
            "sideways.jpg",
        }
        found = json.loads(cli("search", "--json", "Eileen Grace", env=env).stdout)
        assert {Path(h["path"]).name for h in found} == {"both.jpg", "both-reversed.png", "three.jpg"}
        status = json.loads(cli("status", "--json", env=env).stdout)
        assert status["states"]["failed"] == 3 and status["queue_length"] == 0

        # A second `pipeline run` on the same data directory is refused, clearly.
        second = cli("run", str(album), env=env, check=False, timeout=60)
        assert second.returncode == 1 and "already using" in flat(second.stderr)

        children = psutil.Process(run.pid).children(recursive=True)
        assert any("celery" in " ".join(p.cmdline()) for p in children)
    finally:
        output = _stop_run(run)
    assert run.returncode == 0, output
    time.sleep(0.5)
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], (
        "Ctrl-C stops every child"
    )
    assert not (data_dir / "broker.url").exists()


def test_sql_refuses_writes(env: dict[str, str], data_dir: Path) -> None:
    cli("db", "upgrade", env=env)
    for statement in (
        "INSERT INTO people (name, name_key, created_at) VALUES ('x', 'x', '2024-01-01')",
        "UPDATE photos SET state = 'done'",
        "DELETE FROM photos",
        "DROP TABLE photos",
    ):
        proc = cli("sql", statement, env=env, check=False)
        assert proc.returncode == 1, statement
        assert "read-only" in flat(proc.stderr), proc.stderr
    assert _rows(data_dir, "SELECT count(*) FROM people") == [(0,)]
    ok = cli("sql", "--csv", "SELECT count(*) AS n FROM photos", env=env)
    assert ok.stdout.splitlines() == ["n", "0"]
    bad = cli("sql", "SELEC nonsense", env=env, check=False)
    assert bad.returncode == 1 and "error" in flat(bad.stderr)


def test_cli_reports_bad_arguments(env: dict[str, str], tmp_path: Path) -> None:
    missing = cli("enroll", "--name", "X", str(tmp_path / "nope.jpg"), env=env, check=False)
    assert missing.returncode == 2 and "does not exist" in flat(missing.stderr)
    profile = cli("--profile", "nonsense", "status", env=env, check=False)
    assert profile.returncode == 2 and "unknown profile" in flat(profile.stderr)
    no_folder = cli("run", str(tmp_path / "nowhere"), env=env, check=False)
    assert no_folder.returncode == 1 and "not a folder" in flat(no_folder.stderr)


def test_sample_album_until_idle(tmp_path: Path, env: dict[str, str], data_dir: Path) -> None:
    """The README's demo path: build the sample album, enroll its two people, run to completion."""
    lines = cli("sample-album", str(tmp_path / "album"), "--references", str(tmp_path / "refs"), env=env).stdout.split(
        "\n"
    )
    for line in filter(None, lines):
        name, ref = line.split("\t")
        cli("enroll", "--name", name, ref, env=env)
    proc = cli("run", str(tmp_path / "album"), "--until-idle", env=env, timeout=120)
    assert "photos: queued 0  processing 0  done 8  failed 0  missing 0" in proc.stdout, proc.stdout
    table = _photo_table(data_dir)
    assert table["eileen-and-grace.jpg"]["caption"] == "Eileen and Grace."
    assert table["grace-sideways.jpg"]["caption"] == "Grace."
    assert table["coffee.jpg"]["caption"] == "No people."


def test_people_commands(tmp_path: Path, env: dict[str, str]) -> None:
    ref = images.save_jpeg(images.astronaut(), tmp_path / "e.jpg")
    cli("enroll", "--name", "Eileen", str(ref), env=env)
    assert (
        "updated Eileen"
        in cli(
            "enroll",
            "--name",
            "EILEEN",
            str(images.save_jpeg(images.flip(images.astronaut()), tmp_path / "f.jpg")),
            env=env,
        ).stdout
    )
    listed = json.loads(cli("people", "--json", env=env).stdout)
    assert [(p["name"], p["references"]) for p in listed] == [("Eileen", 2)]
    cli("people", "rename", "eileen", "Eileen Collins", env=env)
    cli("enroll", "--name", "Collins", str(ref), env=env)
    cli("people", "merge", "Collins", "Eileen Collins", env=env)
    assert [p["name"] for p in json.loads(cli("people", "--json", env=env).stdout)] == ["Eileen Collins"]
    unknown = cli("people", "forget", "Nobody", env=env, check=False)
    assert unknown.returncode == 1 and "no person named 'Nobody'" in flat(unknown.stderr)
    cli("people", "forget", "Eileen Collins", env=env)
    assert json.loads(cli("people", "--json", env=env).stdout) == []
