"""The web app as a person uses it: Playwright for Python driving Debian's Chromium against
`pipeline run --web` on the sample album (faces profile, real worker). Screenshots are saved in
``test-artifacts/web/`` (git-ignored).

Skipped, with the reason, where Chromium or Playwright is not installed (scripts/test.sh installs
both on a fresh machine when it runs as root).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import PIPELINE, REPO, cli, db_rows, free_port, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("PIPELINE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts" / "web"


def _caption(data_dir: Path, photo_id: int) -> str | None:
    rows = db_rows(
        data_dir,
        f"SELECT c.text FROM captions c JOIN photos p ON p.id = c.photo_id "
        f"WHERE p.id = {photo_id} AND p.state = 'done'",
    )
    return str(rows[0][0]) if rows else None


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium; scripts/test.sh does as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (the `test` extra)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def test_fix_a_wrong_name_in_the_browser(browser: Browser, tmp_path: Path, data_dir: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}
    album = tmp_path / "album"
    for line in filter(
        None, cli("sample-album", str(album), "--references", str(tmp_path / "refs"), env=env).stdout.split("\n")
    ):
        name, reference = line.split("\t")
        cli("enroll", "--name", name, reference, env=env)
    port = free_port()
    run = subprocess.Popen(
        [*PIPELINE, "run", str(album), "--web"],
        env={**os.environ, **env, "PIPELINE_WEB_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: db_rows(data_dir, "SELECT count(*) FROM photos WHERE state = 'done'")[0][0] == 8,
            180,
            message="the sample album to be tagged",
        )
        photo_id, grace_face = db_rows(
            data_dir,
            "SELECT photo_id, face_id FROM photo_people WHERE photo_path LIKE '%eileen-and-grace.jpg' "
            "AND person_name = 'Grace'",
        )[0]
        assert _caption(data_dir, photo_id) == "Eileen and Grace."
        # A wrong name, as a slip of the hand on the command line would leave it:
        cli("correct", str(grace_face), "--name", "Eileen", env=env)
        wait_for(
            lambda: _caption(data_dir, photo_id) not in (None, "Eileen and Grace."),
            120,
            message="the wrong name's caption",
        )
        wrong_caption = _caption(data_dir, photo_id)

        page = browser.new_page(viewport={"width": 1200, "height": 900})
        wait_for(lambda: _answers(page, f"{base}/people"), 60, message="the web app to answer")
        assert page.locator(".person").count() == 2
        _shot(page, "1-people.png")

        page.click("text=Eileen")
        page.wait_for_url(f"{base}/people/*")
        assert "Eileen" in page.inner_text("h1")
        _shot(page, "2-person.png")

        page.goto(f"{base}/photos/{photo_id}")
        row = page.locator(f'.face-row[data-face="{grace_face}"]')
        assert "Eileen" in row.inner_text()
        assert page.inner_text("#caption") == wrong_caption
        _shot(page, "3-photo-wrong-name.png")

        row.get_by_placeholder("this is…").fill("Grace")
        row.locator('button:text("This is")').click()
        page.wait_for_selector(".flash")
        assert "is Grace" in page.inner_text(".flash") and "sent to the workers" in page.inner_text(".flash")

        def caption_fixed() -> bool:
            page.reload()
            return page.inner_text("#caption") == "Eileen and Grace."

        wait_for(caption_fixed, 120, interval=1.0, message="the caption to be redone")
        _shot(page, "4-photo-fixed.png")
        assert db_rows(
            data_dir,
            f"SELECT p.name, f.user_set FROM faces f JOIN people p ON p.id = f.person_id WHERE f.id = {grace_face}",
        ) == [("Grace", 1)]
        assert _caption(data_dir, photo_id) == "Eileen and Grace."
    finally:
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=60)
        (ARTIFACTS / "run-output.txt").write_text(output)
    assert f"web: http://127.0.0.1:{port}" in output


def _shot(page: Page, name: str) -> None:
    """Save a screenshot once every picture on the page has loaded (thumbnails are made on demand)."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _answers(page: Page, url: str) -> bool:
    try:
        response = page.goto(url)
        return response is not None and response.ok
    except Exception:  # playwright raises its own Error while the server is not up yet
        time.sleep(0.5)
        return False
