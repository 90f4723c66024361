"""The container image: the Dockerfile built and run without a Docker engine.

No Docker engine runs on the project's machines, so the image is built with podman and run under chroot:

1. a Debian bookworm rootfs made with `debootstrap --variant=minbase --include=python3,python3-pip,python3-venv`,
   kept as a tarball in CACHE_DIR (debootstrap takes minutes; the tarball is reused while its stamp matches), and
   `podman import`-ed as the base image (reused while its label names the tarball's digest);
2. when the host trusts CAs of its own (/usr/local/share/ca-certificates, e.g. a TLS-intercepting egress proxy),
   a one-layer image on that base that trusts them too, or pip inside the build cannot reach PyPI;
3. `podman build --isolation chroot --build-arg BASE=...` of the project's Dockerfile (chroot isolation shares the
   host's network, so pip reaches the registry without `--network host`); podman's layer cache makes a warm rebuild
   of unchanged sources a matter of seconds, and the layers of an earlier build that this one no longer uses are
   removed so repeated runs do not fill the disk;
4. the image's config is checked (non-root user, exposed ports, HEALTHCHECK, the default command);
5. running containers is refused here, so `podman create` + `podman export` give the image's filesystem, and its
   entrypoint and command run under `chroot --userspec` as the image's user, with the image's environment and
   free ports appended; the test speaks HTTP to it, runs the HEALTHCHECK command inside the chroot, and stops the
   server with SIGTERM, which must exit 0.

Without podman, runc, debootstrap or root this module skips, except under CI (CI=true), where it fails.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.serving import free_port, unavailable

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(os.environ.get("MOCKCORE_CONTAINER_CACHE", "/var/cache/mockcore-container"))
MIRROR = os.environ.get("MOCKCORE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
PACKAGES = ("python3", "python3-pip", "python3-venv")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")

BASE_IMAGE = f"localhost/mockcore-test-base:{SUITE}"
CA_BASE_IMAGE = f"localhost/mockcore-test-base-ca:{SUITE}"
IMAGE = "localhost/mockcore-test:latest"
ROOTFS_LABEL = "org.mockcore.test.rootfs-sha256"

MAX_IMAGE_BYTES = 400 * 1000 * 1000  # on the debootstrap base (the rootfs alone is about 200 MB)
TOOLS = ("podman", "runc", "debootstrap", "chroot", "tar")
INSTALL_HINT = "apt-get update && apt-get install -y podman runc debootstrap (as root)"

DEBOOTSTRAP_TIMEOUT = 1800.0
BUILD_TIMEOUT = 1200.0
PODMAN_TIMEOUT = 300.0
LOCK_TIMEOUT = 3600.0  # another run may be making the rootfs
READY_TIMEOUT = 60.0
EXIT_TIMEOUT = 20.0


# Prerequisites


def missing_prerequisites() -> list[str]:
    problems = [f"`{tool}` not found" for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        problems.append("not root (debootstrap, rootful podman and chroot need it)")
    return problems


@pytest.fixture(scope="module", autouse=True)
def prerequisites() -> None:
    problems = missing_prerequisites()
    if not problems:
        return
    unavailable(
        f"container test needs podman, runc, debootstrap and root: {'; '.join(problems)}. Install: {INSTALL_HINT}"
    )


# Commands


def run(argv: Sequence[str], timeout: float, *, log: Path | None = None) -> str:
    """Run a command to completion; its output goes to `log` (or is captured); fail with the output's tail. On a
    timeout its whole process group is killed (debootstrap and podman build leave children otherwise)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        code: int | str
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = f"timeout after {timeout:.0f} s"
        finally:
            if process.poll() is None:  # timed out, or the test run was interrupted
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        out.seek(0)
        text = out.read().decode(errors="replace")
    if log is not None:
        log.write_text(text)
    if code != 0:
        raise AssertionError(
            f"{' '.join(argv)} failed ({code}) after {time.monotonic() - started:.0f} s:\n{text[-6000:]}"
        )
    return text


def podman(*args: str, timeout: float = PODMAN_TIMEOUT, log: Path | None = None) -> str:
    return run(["podman", "--runtime", "runc", *args], timeout, log=log)


def podman_ok(*args: str) -> bool:
    result = subprocess.run(
        ["podman", "--runtime", "runc", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=PODMAN_TIMEOUT,
        check=False,
    )
    return result.returncode == 0


def inspect_image(ref: str) -> dict[str, Any]:
    return dict(json.loads(podman("image", "inspect", ref))[0])


def image_id(ref: str) -> str | None:
    if not podman_ok("image", "exists", ref):
        return None
    return str(inspect_image(ref)["Id"])


def remove_images(ids: Sequence[str], *, untagged_only: bool = False) -> None:
    """Best effort: an image still in use or with children stays (podman refuses, which is what we want)."""
    for ident in ids:
        if untagged_only:
            found = subprocess.run(
                ["podman", "--runtime", "runc", "image", "inspect", "--format", "{{len .RepoTags}}", ident],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PODMAN_TIMEOUT,
                check=False,
            )
            if found.returncode != 0 or found.stdout.strip() != "0":
                continue  # gone already, or tagged: someone's image, not a stale step
        subprocess.run(
            ["podman", "--runtime", "runc", "rmi", ident],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PODMAN_TIMEOUT,
            check=False,
        )


def unmount_below(path: Path) -> None:
    """Lazily unmount whatever is mounted at or below `path` (debootstrap mounts /proc and /sys in its target and
    may leave them behind when it fails), deepest first, so that removing the tree never walks into a mount."""
    prefix = str(path.resolve())
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=60, check=False)


def remove_tree(path: Path) -> None:
    if path.exists():
        unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)


# The cache: rootfs tarball, base images, build


@dataclass(frozen=True)
class Timings:
    stages: dict[str, float]

    def add(self, stage: str, started: float) -> None:
        self.stages[stage] = time.monotonic() - started

    def describe(self) -> str:
        return ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in self.stages.items())


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    inspect: dict[str, Any]
    timings: Timings
    logs: Path

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.inspect.get("Config") or {})

    @property
    def healthcheck(self) -> dict[str, Any]:
        # podman puts it at the top level of `image inspect`; docker under Config.
        return dict(self.config.get("Healthcheck") or self.inspect.get("Healthcheck") or {})

    @property
    def command(self) -> list[str]:
        return [*(self.config.get("Entrypoint") or []), *(self.config.get("Cmd") or [])]

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config.get("Env") or [])


@dataclass(frozen=True)
class RootfsStamp:
    suite: str
    mirror: str
    packages: list[str]
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cached_rootfs(tarball: Path, stamp_path: Path) -> RootfsStamp | None:
    """The cached tarball's stamp if it is complete and made with today's settings, else None."""
    try:
        stamp = RootfsStamp(**json.loads(stamp_path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    wanted = (SUITE, MIRROR, list(PACKAGES))
    if (stamp.suite, stamp.mirror, stamp.packages) != wanted or not tarball.is_file():
        return None
    if tarball.stat().st_size != stamp.size or sha256_of(tarball) != stamp.sha256:
        return None
    return stamp


def make_rootfs(tarball: Path, stamp_path: Path, logs: Path) -> RootfsStamp:
    """debootstrap a minimal bookworm with Python, drop apt's caches, and keep it as a tarball (atomically)."""
    target = CACHE_DIR / f"rootfs.tmp-{os.getpid()}"
    partial = tarball.with_name(tarball.name + f".tmp-{os.getpid()}")
    try:
        remove_tree(target)
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(target),
                MIRROR,
            ],
            DEBOOTSTRAP_TIMEOUT,
            log=logs / "debootstrap.log",
        )
        unmount_below(target)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (target / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        run(["tar", "--numeric-owner", "-C", str(target), "-cf", str(partial), "."], PODMAN_TIMEOUT)
        stamp = RootfsStamp(SUITE, MIRROR, list(PACKAGES), sha256_of(partial), partial.stat().st_size)
        os.replace(partial, tarball)
        stamp_partial = stamp_path.with_name(stamp_path.name + ".tmp")
        stamp_partial.write_text(json.dumps(stamp.__dict__))
        os.replace(stamp_partial, stamp_path)
        return stamp
    finally:
        remove_tree(target)
        partial.unlink(missing_ok=True)


def base_image(stamp: RootfsStamp, tarball: Path) -> None:
    """Import the tarball as BASE_IMAGE unless the image there already carries its digest."""
    if image_id(BASE_IMAGE) is not None:
        labels = inspect_image(BASE_IMAGE).get("Labels") or {}
        if labels.get(ROOTFS_LABEL) == stamp.sha256:
            return
        remove_images([BASE_IMAGE])
    podman("import", "--change", f"LABEL {ROOTFS_LABEL}={stamp.sha256}", str(tarball), BASE_IMAGE)


BUILD_ID_RE = re.compile(r"^--> (?:Using cache )?([0-9a-f]{11,64})$", re.MULTILINE)


def build(context: Path, tag: str, dockerfile: Path, build_args: dict[str, str], log: Path) -> None:
    """`podman build` with its layer cache; afterwards remove the images of this tag's previous build that this one
    did not reuse (the record of each build's step images lives in CACHE_DIR)."""
    record = CACHE_DIR / f"build-ids-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.json"
    args = [arg for name, value in build_args.items() for arg in ("--build-arg", f"{name}={value}")]
    text = podman(
        "build",
        "--isolation",
        "chroot",
        "--format",
        "docker",  # an OCI image config has no HEALTHCHECK
        "--layers",
        *args,
        "-f",
        str(dockerfile),
        "-t",
        tag,
        str(context),
        timeout=BUILD_TIMEOUT,
        log=log,
    )
    new_id = image_id(tag)
    assert new_id is not None, f"podman build did not tag {tag}"
    ids = [*BUILD_ID_RE.findall(text), new_id]
    try:
        previous = list(json.loads(record.read_text()))
    except (OSError, ValueError):
        previous = []
    stale = [old for old in reversed(previous) if not any(n.startswith(old) or old.startswith(n) for n in ids)]
    remove_images(stale, untagged_only=True)
    record.write_text(json.dumps(ids))


def host_ca_files() -> list[Path]:
    return sorted(HOST_CA_DIR.glob("*.crt")) if HOST_CA_DIR.is_dir() else []


def trusting_base(tmp: Path, logs: Path) -> str:
    """BASE_IMAGE, or an image on it that also trusts the host's own CAs (pip in the build goes through the same
    egress as the host)."""
    cas = host_ca_files()
    if not cas:
        return BASE_IMAGE
    context = tmp / "ca-context"
    context.mkdir()
    for ca in cas:
        shutil.copy(ca, context / ca.name)
    (context / "Containerfile").write_text(
        "ARG BASE\nFROM ${BASE}\nCOPY *.crt /usr/local/share/ca-certificates/\nRUN update-ca-certificates\n"
    )
    build(context, CA_BASE_IMAGE, context / "Containerfile", {"BASE": BASE_IMAGE}, logs / "ca-build.log")
    return CA_BASE_IMAGE


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mockcore-container-"))
    yield path
    remove_tree(path)


@pytest.fixture(scope="module")
def cache_lock() -> Iterator[float]:
    """CACHE_DIR and the test images are this module's, one run at a time, from the build until the image's
    filesystem is exported (a concurrent run building other sources would retag the image and remove this one's
    layers as stale). Yields the seconds spent waiting."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (CACHE_DIR / "lock").open("w") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started > LOCK_TIMEOUT:
                    raise AssertionError(f"{CACHE_DIR / 'lock'} held by another run for {LOCK_TIMEOUT:.0f} s") from None
                time.sleep(1)
        yield time.monotonic() - started
        fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def built(cache_lock: float, workdir: Path) -> BuiltImage:
    logs = workdir / "logs"
    logs.mkdir()
    timings = Timings({"waiting for the cache lock": cache_lock})

    tarball, stamp_path = CACHE_DIR / f"{SUITE}-minbase.tar", CACHE_DIR / f"{SUITE}-minbase.json"
    step = time.monotonic()
    stamp = cached_rootfs(tarball, stamp_path)
    if stamp is None:
        stamp = make_rootfs(tarball, stamp_path, logs)
        timings.add("debootstrap", step)
    else:
        timings.add("rootfs cache check", step)

    step = time.monotonic()
    base_image(stamp, tarball)
    base = trusting_base(workdir, logs)
    timings.add("base image", step)

    step = time.monotonic()
    build(ROOT, IMAGE, ROOT / "Dockerfile", {"BASE": base}, logs / "build.log")
    timings.add("image build", step)
    inspect = inspect_image(IMAGE)
    return BuiltImage(str(inspect["Id"]), inspect, timings, logs)


# The image's configuration


def test_image_runs_as_a_non_root_user(built: BuiltImage) -> None:
    user = str(built.config.get("User") or "")
    assert user, "no USER: the image would run as root"
    assert user.split(":")[0] not in ("0", "root"), user


def test_image_exposes_the_core_and_activation_ports(built: BuiltImage) -> None:
    exposed = set(built.config.get("ExposedPorts") or {})
    assert {"8008/tcp", "8009/tcp"} <= exposed, exposed


def test_image_healthcheck_asks_the_control_plane(built: BuiltImage) -> None:
    test = list(built.healthcheck.get("Test") or [])
    assert test and test[0] in ("CMD", "CMD-SHELL"), built.healthcheck
    text = " ".join(test)
    assert "/_mock/health" in text and "127.0.0.1" in text, text
    assert "curl" not in text and "wget" not in text, "slim images have neither"
    assert built.env.get("MOCKCORE_HEALTH_PORT") == "8008", built.env


def test_image_serves_on_all_addresses_by_default(built: BuiltImage) -> None:
    assert built.config.get("Entrypoint") == ["mockcore"], built.config
    assert built.config.get("Cmd") == ["serve", "--host", "0.0.0.0"], built.config
    assert "/opt/mockcore/bin" in built.env.get("PATH", "").split(":"), built.env


def test_image_is_small(built: BuiltImage, capsys: pytest.CaptureFixture[str]) -> None:
    size = int(built.inspect["Size"])
    with capsys.disabled():
        print(f"\n[container] image {IMAGE} ({built.ref[:12]}): {size / 1e6:.0f} MB; {built.timings.describe()}")
    assert size < MAX_IMAGE_BYTES, f"{size / 1e6:.0f} MB on the debootstrap base"


# The image's filesystem, run under chroot


@pytest.fixture(scope="module")
def rootfs(built: BuiltImage, workdir: Path) -> Iterator[Path]:
    """The image's filesystem as a container would see it: `podman create` + `podman export`, unpacked on a tmpfs
    of its own (unpacking and removing some 7,000 files on this disk takes longer than the rest of the test; the
    tmpfs goes with one umount)."""
    target = workdir / "rootfs"
    target.mkdir()
    run(["mount", "-t", "tmpfs", "-o", "size=2g,mode=0755", "mockcore-test-rootfs", str(target)], 60)
    try:
        name = f"mockcore-test-{os.getpid()}"
        podman("create", "--no-healthcheck", "--name", name, built.ref)
        try:
            export_into(name, target)
        finally:
            podman("rm", "--force", name)
        yield target
    finally:
        unmount_below(target)


def export_into(container: str, target: Path) -> None:
    """`podman export CONTAINER | tar -x`, streamed (no 200 MB tarball on disk), both ends checked and bounded."""
    with tempfile.TemporaryFile() as errors:
        exporter = subprocess.Popen(
            ["podman", "--runtime", "runc", "export", container],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert exporter.stdout is not None
        try:
            untar = subprocess.run(
                ["tar", "--numeric-owner", "-xpf", "-", "-C", str(target)],
                stdin=exporter.stdout,
                stderr=errors,
                timeout=PODMAN_TIMEOUT,
                check=False,
            )
            exporter.stdout.close()
            exported = exporter.wait(PODMAN_TIMEOUT)
        finally:
            if exporter.poll() is None:
                exporter.kill()
                exporter.wait()
        errors.seek(0)
        assert (exported, untar.returncode) == (0, 0), f"podman export | tar: {errors.read().decode(errors='replace')}"


def resolve_user(rootfs: Path, user: str) -> tuple[int, int]:
    """USER as numbers, from the image's own /etc/passwd and /etc/group where it names names."""
    name, _, group = user.partition(":")

    def lookup(table: str, key: str, field: int) -> int:
        if key.isdigit():
            return int(key)
        for line in (rootfs / "etc" / table).read_text().splitlines():
            parts = line.split(":")
            if parts[0] == key:
                return int(parts[field])
        raise AssertionError(f"{key!r} not in the image's /etc/{table}")

    uid = lookup("passwd", name, 2)
    if group:
        gid = lookup("group", group, 2)
    elif name.isdigit():
        gid = uid
    else:
        gid = lookup("passwd", name, 3)
    return uid, gid


def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses that listen on `port` (from /proc/net/tcp: state 0A is LISTEN)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, _, hex_port = fields[1].partition(":")
        if fields[3] == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@dataclass
class ChrootServer:
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


def chroot_argv(rootfs: Path, uid: int, gid: int, command: Sequence[str]) -> list[str]:
    return [str(shutil.which("chroot")), f"--userspec={uid}:{gid}", str(rootfs), *command]


def test_default_command_serves_under_chroot(built: BuiltImage, rootfs: Path, workdir: Path) -> None:
    uid, gid = resolve_user(rootfs, str(built.config["User"]))
    assert uid != 0
    port, activation_port = free_port(), free_port()
    while activation_port == port:
        activation_port = free_port()
    ready = rootfs / "tmp" / "ready.json"
    command = [
        *built.command,
        "--port",
        str(port),
        "--activation-port",
        str(activation_port),
        "--ready-file",
        "/tmp/ready.json",
    ]
    stdout, stderr = workdir / "serve.out", workdir / "serve.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            chroot_argv(rootfs, uid, gid, command),  # chroot execs the command: this is the server's own pid
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=built.env,  # the image's environment only: its PATH finds `mockcore` inside the chroot
            start_new_session=True,
        )
    server = ChrootServer(process, stdout, stderr)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready.exists():
            assert server.process.poll() is None, f"exited {server.process.returncode}: {server.output()}"
            assert time.monotonic() < deadline, f"not ready within {READY_TIMEOUT} s: {server.output()}"
            time.sleep(0.05)
        document = json.loads(ready.read_text())
        assert ready.stat().st_uid == uid, "the server does not run as the image's user"

        # It listens on every address (the default --host 0.0.0.0), on the ports appended to its command.
        assert listening_addresses(port) == {"0.0.0.0"}, listening_addresses(port)
        assert listening_addresses(activation_port) == {"0.0.0.0"}, listening_addresses(activation_port)

        for probe_port in (port, activation_port):
            health = requests.get(f"http://127.0.0.1:{probe_port}/_mock/health", timeout=10)
            assert (health.status_code, health.json()) == (200, {"status": "ok"})
        licence = requests.get(
            f"http://127.0.0.1:{port}/admin/license", headers={"apikey": document["apikey"]}, timeout=10
        )
        assert licence.status_code == 200, licence.text
        assert licence.json()["deployment"], licence.json()
        refused = requests.get(f"http://127.0.0.1:{port}/admin/license", timeout=10)
        assert refused.status_code == 400, refused.text  # E_ACCESS_MISSING
        contract = requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10)
        assert contract.status_code == 200 and "/admin/license" in contract.json()["paths"], contract.text[:300]

        # The contract suite is in the image too: `mockcore-contracts server`, as the image's user, checks the
        # server it serves (a small budget: the point is that the command works from the image).
        suite = subprocess.run(
            chroot_argv(
                rootfs,
                uid,
                gid,
                [
                    "mockcore-contracts",
                    "server",
                    "--core-url",
                    f"http://127.0.0.1:{port}",
                    "--examples",
                    "1",
                    "--steps",
                    "5",
                    "--derandomize",
                ],
            ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=dict(built.env, HOME="/tmp"),
            timeout=READY_TIMEOUT + 120,
            check=False,
        )
        assert suite.returncode == 0 and "PASSED" in suite.stdout, suite.stdout[-2000:] + suite.stderr[-2000:]

        # The HEALTHCHECK command itself, inside the image, as its user: healthy now...
        health_env = dict(built.env, MOCKCORE_HEALTH_PORT=str(port))
        assert healthcheck(built, rootfs, uid, gid, health_env) == 0

        # ...and SIGTERM stops the server cleanly.
        server.process.send_signal(signal.SIGTERM)
        try:
            code = server.process.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {EXIT_TIMEOUT} s after SIGTERM: {server.output()}") from None
        assert code == 0, server.output()
        assert not listening_addresses(port)

        # Unhealthy once nothing answers.
        assert healthcheck(built, rootfs, uid, gid, health_env) != 0
    finally:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(EXIT_TIMEOUT)


def healthcheck(built: BuiltImage, rootfs: Path, uid: int, gid: int, env: dict[str, str]) -> int:
    test = list(built.healthcheck["Test"])
    command = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
    timeout = max(int(built.healthcheck.get("Timeout") or 0) / 1e9, 5.0) + 10.0
    result = subprocess.run(
        chroot_argv(rootfs, uid, gid, command),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return result.returncode
