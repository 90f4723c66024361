"""`mockcore serve` end to end: real subprocesses on free ports, spoken to with the real `curl`.

Covers the ready file and its stdout twin, every flag of the test-double guide's table, the online and offline
failovers (docs/behaviour.md, Transitions) over HTTP and HTTPS, start-up errors, SIGINT/SIGTERM, and the curl
walkthroughs of docs/guides/test-double.md and the README's 30-second example as written.

The long-lived servers are started together once per module (their start-ups overlap) and each test uses its own
server, or its own instances and keys on a shared one, so tests do not interfere; every server is stopped with
SIGTERM at teardown, which must exit 0 with every port closed, and is killed whatever happens.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from mockcore import identity
from mockcore.cli import InstanceSpec, assign_ports
from mockcore.tls import make_throwaway_ca
from tests.serving import Exited, MockcoreProcess, free_port, host_port, listens, run_all, start_all
from tests.states import LICENCE_FILE_FIELDS, LICENSED_FIELDS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guides" / "test-double.md"
EXAMPLE = "## In 30 seconds"  # the README's example
CURL = shutil.which("curl") or "/usr/bin/curl"

# Documented answers (docs/responses.md and docs/errors.md).
REGISTERED = "The backup MetaDefender Core instance is now registered as a backup one."
UNREGISTERED = "This MetaDefender Core instance is no longer registered as a backup one."
NOMINATED = "This MetaDefender Core instance is now fully activated and allowed to process files."
NOMINATE_OFFLINE = (
    "A backup registered offline cannot be nominated. Remove the backup registration and activate it with a "
    "license file."
)
SCAN_BACKUP = "This instance is a backup and is not allowed to process files."
SCAN_UNLICENSED = "This instance is not licensed to process files."
NOT_BACKUP = "This instance is not registered as a backup."
INVALID_KEY = "Could not activate your product because the Activation Key you provided is invalid."
CATALOGUE_TEXTS = {"E_NOMINATE_OFFLINE": NOMINATE_OFFLINE, "E_NOT_BACKUP": NOT_BACKUP}

# What docs/guides/test-double.md and the README say `mockcore serve` (seed 0) prints.
SEED0_APIKEY = "00ce77fb29ee58da82cb85cb27ab43ba00ce"
SEED0_KEY = "R7PN-18oR-ldOU-WDs4-V3eZ-KJ7b-9a4v"

DEPLOYMENT_RE = re.compile(r"MSCL[0-9a-f]{32}")
EXPIRATION_RE = re.compile(r"\d{2}/\d{2}/\d{4}")
DATA_ID_RE = re.compile(r"[0-9a-f]{32}")

KEY_ONLINE = "ONLN-0000-1111-2222-3333-4444-5555"
KEY_OFFLINE = "OFFL-0000-1111-2222-3333-4444-5555"
KEY_3 = "KEY3-SLOT-aaaa-bbbb-cccc-dddd-0010"
KEY_2 = "KEY2-SLOT-aaaa-bbbb-cccc-dddd-0365"
KEY_1 = "KEY1-SLOT-aaaa-bbbb-cccc-dddd-0365"
FLAGS_APIKEY = "19ce28bd37af46ec55db64ca73fb82ea91dc"
FLAGS_SEED = "s1"

OVERRIDES_YAML = """\
version: "5.8.0"
errors:
  E_NO_SLOT: {status: 409, text: "No license slot left"}
  E_NOMINATE_OFFLINE: {text: "Offline backups cannot be nominated"}
"""


# curl


@dataclass(frozen=True)
class CurlResponse:
    status: int
    reason: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def yaml(self) -> Any:
        return yaml.safe_load(self.body)


def curl_process(*args: str, cacert: str | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [CURL, "--silent", "--show-error", "--max-time", "20"]
    if cacert is not None:
        command += ["--cacert", cacert]
    return subprocess.run([*command, *args], capture_output=True, timeout=30, check=False)


def parse_response(raw: bytes) -> tuple[int, str, dict[str, str], bytes]:
    while True:
        head, _, raw = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        _version, code, *reason = status_line.split(" ", 2)
        if not code.startswith("1"):  # skip `100 Continue`
            break
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(code), (reason[0] if reason else ""), headers, raw


def curl(*args: str, cacert: str | None = None, output: Path | None = None) -> CurlResponse:
    """Run curl, which must succeed at the transport level; headers on stdout, the body there or in `output`."""
    extra = ["--dump-header", "-", *(["--output", str(output)] if output is not None else [])]
    done = curl_process(*extra, *args, cacert=cacert)
    assert done.returncode == 0, f"curl {shlex.join(args)} failed ({done.returncode}): {done.stderr.decode()}"
    status, reason, headers, body = parse_response(done.stdout)
    if output is not None:
        body = output.read_bytes()
    return CurlResponse(status, reason, headers, body)


@dataclass(frozen=True)
class Core:
    """A Core instance spoken to with curl, the way the guide's walkthrough does."""

    url: str
    apikey: str | None
    cacert: str | None = None

    def __call__(self, path: str, *args: str) -> CurlResponse:
        auth = ["--header", f"apikey: {self.apikey}"] if self.apikey is not None else []
        return curl(*auth, *args, self.url + path, cacert=self.cacert)

    def licence(self) -> dict[str, Any]:
        response = self("/admin/license")
        assert response.status == 200, response
        return dict(response.json())

    def deployment(self) -> str:
        return str(self.licence()["deployment"])

    def activate(self, key: str, comment: str = "test") -> CurlResponse:
        body = json.dumps({"activationKey": key, "quantity": 1, "comment": comment})
        return self("/admin/license/activation", "-d", body)

    def upload(self, licence_file: Path) -> CurlResponse:
        return self("/admin/license", "--data-binary", f"@{licence_file}")

    def register_online(self, key: str, production: str) -> CurlResponse:
        return self(
            "/admin/license/backup",
            *("-X", "POST", "-H", f"activation-key: {key}", "-H", f"active-deployment-id: {production}"),
        )

    def register_offline(self, licence_file: Path) -> CurlResponse:
        return self("/admin/license/backup", "--data-binary", f"@{licence_file}")

    def unregister(self) -> CurlResponse:
        return self("/admin/license/backup", "-X", "DELETE")

    def nominate(self) -> CurlResponse:
        return self("/admin/license/backup/nomination", "-X", "POST")

    def is_backup(self) -> bool:
        response = self("/admin/license/backup")
        assert response.status == 200, response
        return bool(response.json()["is_backup"])

    def scan(self, body: str = "hello, world") -> CurlResponse:
        headers = ("-H", "filename: sample.txt", "-H", "Content-Type: application/octet-stream")
        return self("/file", *headers, "--data-binary", body)

    def version(self) -> CurlResponse:
        return self("/version")


@dataclass(frozen=True)
class Activation:
    url: str
    cacert: str | None = None

    def obtain(self, key: str, deployment: str, output: Path | None = None) -> CurlResponse:
        query = urlencode({"key": key, "deployment": deployment, "quantity": 1})
        return curl(f"{self.url}/activation?{query}", cacert=self.cacert, output=output)

    def release(self, key: str, deployment: str) -> CurlResponse:
        query = urlencode({"key": key, "deployment": deployment})
        return curl(f"{self.url}/deactivation?{query}", cacert=self.cacert)


def core(server: MockcoreProcess, name: str, apikey: str | None = "") -> Core:
    return Core(server.instances[name], server.apikey if apikey == "" else apikey, server.ca_cert)


def activation(server: MockcoreProcess) -> Activation:
    return Activation(server.activation_url, server.ca_cert)


def made_up_deployment(number: int) -> str:
    return f"MSCL{number:032x}"


# Assertions on answers


def assert_json(response: CurlResponse, status: int, body: object) -> None:
    assert (response.status, response.json()) == (status, body), response
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers


def assert_licensed(info: dict[str, Any], deployment: str, *, online: bool, days_left: int | None = None) -> None:
    assert set(info) >= LICENSED_FIELDS, info
    assert info["deployment"] == deployment, info
    assert info["online_activated"] is online, info
    assert isinstance(info["days_left"], int) and not isinstance(info["days_left"], bool), info
    assert isinstance(info["max_node_count"], str), info
    assert EXPIRATION_RE.fullmatch(info["expiration"]), info
    assert info["licensed_engines"] == "*", info
    if days_left is not None:
        assert info["days_left"] == days_left, info


def assert_activation_failed(response: CurlResponse) -> None:
    """docs/activation-server.md: a refusal is still HTTP 200, with the reason phrase and a YAML `error:` body."""
    assert (response.status, response.reason) == (200, "Activation failed"), response
    doc = response.yaml()
    assert isinstance(doc, dict) and set(doc) == {"error"} and isinstance(doc["error"], str) and doc["error"], doc


def assert_invalid_key(response: CurlResponse) -> None:
    assert (response.status, response.reason) == (200, "Invalid parameter"), response
    assert response.yaml()["error"].startswith(INVALID_KEY), response


def assert_licence_file(response: CurlResponse, key: str, deployment: str) -> dict[str, Any]:
    assert (response.status, response.reason) == (200, "OK"), response
    assert response.headers["content-type"].startswith("application/x-yaml"), response.headers
    assert response.headers["content-disposition"] == "attachment; filename=license.yml", response.headers
    doc = response.yaml()
    assert isinstance(doc, dict) and set(doc) == LICENCE_FILE_FIELDS, doc
    assert (doc["activation_key"], doc["deployment"], doc["online"]) == (key, deployment, False), doc
    assert EXPIRATION_RE.fullmatch(doc["expiration"]), doc
    return doc


def assert_scans_clean(instance: Core) -> None:
    submitted = instance.scan()
    assert submitted.status == 200, submitted
    data_id = submitted.json()["data_id"]
    assert DATA_ID_RE.fullmatch(data_id), submitted
    result = instance(f"/file/{data_id}")
    assert result.status == 200, result
    doc = result.json()
    assert doc["data_id"] == data_id, doc
    assert doc["process_info"]["progress_percentage"] == 100, doc
    assert doc["scan_results"]["scan_all_result_i"] == 0, doc


def assert_stopped_cleanly(server: MockcoreProcess, exited: Exited) -> None:
    assert exited.returncode == 0, exited
    assert "stopped" in exited.stderr, exited.stderr
    assert "Traceback" not in exited.stderr, exited.stderr
    still = [address for address in server.addresses() if listens(*address)]
    assert not still, f"still listening after exit: {still}"


# The failovers, shared by the HTTP and HTTPS runs


def run_online_failover(prod: Core, backup: Core, other: Core, act: Activation, key: str) -> None:
    """The guide's online failover; `key` has one slot, so slot use is read from the activation server."""
    dep, bdep, odep = prod.deployment(), backup.deployment(), other.deployment()
    assert len({dep, bdep, odep}) == 3
    assert prod.licence() == {"deployment": dep, "deployment_id": dep}

    assert_json(prod.activate(key, comment="prod"), 200, {"success": True})
    assert_licensed(prod.licence(), dep, online=True)
    assert_activation_failed(act.obtain(key, odep))  # the one slot is taken

    assert_json(backup.register_online(key, dep), 200, {"success": REGISTERED})
    assert backup.is_backup() is True
    assert_licensed(backup.licence(), bdep, online=True)
    assert_json(backup.scan(), 403, {"err": SCAN_BACKUP})
    assert_scans_clean(prod)

    assert_json(backup.nominate(), 200, {"success": NOMINATED})
    assert prod.licence() == {"deployment": dep, "deployment_id": dep, "reactivate": True}
    assert_json(prod.scan(), 403, {"err": SCAN_UNLICENSED})
    assert backup.is_backup() is False
    assert_licensed(backup.licence(), bdep, online=True)
    assert_scans_clean(backup)

    # Slot use unchanged: the key's single slot moved from prod to backup.
    assert_activation_failed(act.obtain(key, odep))
    assert_activation_failed(act.obtain(key, dep))
    assert act.release(key, dep).status == 404
    assert_licence_file(act.obtain(key, bdep), key, bdep)  # already holds the slot: the file again


def run_offline_failover(prod: Core, backup: Core, other: Core, act: Activation, key: str, workdir: Path) -> None:
    """The offline failover (docs/behaviour.md, Transitions); `key` has one slot."""
    dep, bdep, odep = prod.deployment(), backup.deployment(), other.deployment()
    prod_file, backup_file = workdir / "prod.yml", workdir / "backup.yml"

    assert_licence_file(act.obtain(key, dep, output=prod_file), key, dep)
    assert_json(prod.upload(prod_file), 200, {"success": True})
    assert_licensed(prod.licence(), dep, online=False)
    assert_activation_failed(act.obtain(key, odep))

    assert_json(backup.register_offline(prod_file), 200, {"success": REGISTERED})
    assert backup.is_backup() is True
    assert_licensed(backup.licence(), bdep, online=False)
    assert_json(backup.nominate(), 400, {"err": NOMINATE_OFFLINE})
    assert backup.is_backup() is True
    assert_json(backup.scan(), 403, {"err": SCAN_BACKUP})

    released = act.release(key, dep)
    assert released.status == 200, released
    assert set(released.yaml()) == {"success"}, released
    assert_licence_file(act.obtain(key, bdep, output=backup_file), key, bdep)
    assert_json(backup.unregister(), 200, {"success": UNREGISTERED})
    assert backup.licence() == {"deployment": bdep, "deployment_id": bdep}  # unregistering drops the key
    assert_json(backup.upload(backup_file), 200, {"success": True})

    assert backup.is_backup() is False
    assert_licensed(backup.licence(), bdep, online=False)
    assert_scans_clean(backup)
    assert_activation_failed(act.obtain(key, odep))  # the one slot is the backup's now
    assert_licensed(prod.licence(), dep, online=False)  # offline: keeps its local licence (decisions.md)


# The walkthroughs of docs/guides/test-double.md and the README's example


@dataclass(frozen=True)
class Command:
    text: str
    expect: str | None  # the block's `# ...` comment when it states an answer


def _is_expectation(comment: str) -> bool:
    return comment.startswith("{") or re.fullmatch(r"\d{3} E_[A-Z_]+ text", comment) is not None


def readme_block(heading: str, page: Path = GUIDE) -> str:
    """The first `sh` block after `heading` in `page` (the test-double guide unless said)."""
    text = page.read_text()
    start = text.index(heading)
    begin = text.index("```sh\n", start) + len("```sh\n")
    return text[begin : text.index("```", begin)]


def parse_block(block: str) -> list[Command]:
    logical: list[str] = []
    pending = ""
    for line in block.splitlines():
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    commands: list[Command] = []
    for line in logical:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comment = stripped.lstrip("#").strip()
            if _is_expectation(comment) and commands and commands[-1].expect is None:
                commands[-1] = Command(commands[-1].text, comment)
            continue
        match = re.match(r"^(.*?)\s+#\s(.*)$", line)
        if match:
            comment = match[2].strip()
            commands.append(Command(match[1].strip(), comment if _is_expectation(comment) else None))
        else:
            commands.append(Command(stripped, None))
    return commands


def readme_serve_flags(heading: str = "## Walkthrough: an online failover with curl", page: Path = GUIDE) -> list[str]:
    """The flags of the block's first line, `mockcore serve ... &`."""
    first = parse_block(readme_block(heading, page))[0].text
    words = shlex.split(first)
    assert words[:2] == ["mockcore", "serve"] and words[-1] == "&", first
    return words[2:-1]


def walkthrough(heading: str, page: Path = GUIDE) -> list[Command]:
    commands = parse_block(readme_block(heading, page))
    return [c for c in commands if not c.text.startswith("mockcore serve")]


def _matches(expected: Any, actual: Any) -> bool:
    if expected == "MSCL...":
        return isinstance(actual, str) and DEPLOYMENT_RE.fullmatch(actual) is not None
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and set(expected) == set(actual)
            and all(_matches(v, actual[k]) for k, v in expected.items())
        )
    return bool(expected == actual)


def _expectation_problem(expect: str, output: str) -> str | None:
    coded = re.fullmatch(r"(\d{3}) (E_[A-Z_]+) text", expect)
    expected = {"err": CATALOGUE_TEXTS[coded[2]]} if coded else json.loads(expect)
    try:
        actual = json.loads(output)
    except ValueError:
        return f"expected {expect}, got non-JSON {output!r}"
    return None if _matches(expected, actual) else f"expected {expect}, got {output}"


def run_walkthrough(server: MockcoreProcess, commands: list[Command], workdir: Path) -> list[str]:
    """Run the commands in one bash, the documented fixed URLs replaced by the served ones; return the problems."""
    first = server.instances.get("prod") or next(iter(server.instances.values()))
    urls = {"http://127.0.0.1:8008": first, "http://127.0.0.1:8009": server.activation_url}
    if "backup" in server.instances:
        urls["http://127.0.0.1:8010"] = server.instances["backup"]
    lines = []
    for command in commands:
        text = command.text
        for fixed, served in urls.items():
            text = text.replace(fixed, served)
        lines += [text, "printf '\\n@@@ %s\\n' \"$?\""]
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "walkthrough.sh"
    script.write_text("\n".join(lines) + "\n")
    done = subprocess.run(["bash", str(script)], cwd=workdir, capture_output=True, text=True, timeout=60, check=False)
    parts = re.split(r"\n@@@ (\d+)\n", done.stdout)
    outputs, codes = parts[0:-1:2], parts[1::2]
    assert len(outputs) == len(commands), (done.stdout, done.stderr)
    problems = []
    for command, output, code in zip(commands, outputs, codes, strict=True):
        if code != "0":
            problems.append(f"exit {code}: {command.text}")
        elif command.expect is not None and (problem := _expectation_problem(command.expect, output)):
            problems.append(f"{problem}\n    from: {command.text}")
    return problems


# The servers


def _three_free_ports() -> int:
    """P such that P, P+1 and P+2 are free (for the guide's "skipping taken ports" rule)."""
    for _ in range(100):
        port = free_port()
        if port + 2 > 65535:
            continue
        sockets: list[socket.socket] = []
        try:
            for candidate in (port, port + 1, port + 2):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no three consecutive free ports")


@dataclass
class Pool:
    servers: dict[str, MockcoreProcess]
    workdir: Path
    b_port: int
    first_port: int
    started_on: tuple[date, date]  # UTC dates just before and after the start
    own_ca: Path

    def __getitem__(self, name: str) -> MockcoreProcess:
        return self.servers[name]

    def expiries(self, days: int) -> set[str]:
        return {(day + timedelta(days=days)).strftime("%m/%d/%Y") for day in self.started_on}


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    workdir = tmp_path_factory.mktemp("cli")
    own = make_throwaway_ca(workdir / "own-tls", ["127.0.0.1", "localhost"])
    assert own.ca_cert is not None
    overrides = workdir / "overrides.yml"
    overrides.write_text(OVERRIDES_YAML)
    b_port, first_port = free_port(), _three_free_ports()
    readme_flags = readme_serve_flags()
    example_flags = readme_serve_flags(EXAMPLE, README)
    specs: dict[str, list[str]] = {
        "flags": [
            *("--instance", "a", "--instance", f"b={b_port}"),
            *("--key", f"{KEY_3}:3:10", "--key", f"{KEY_2}:2", "--key", KEY_1),
            *("--seed", FLAGS_SEED, "--apikey", FLAGS_APIKEY, "--admin", "ops:s3cret"),
        ],
        "ports": [
            "--instance",
            "a",
            "--instance",
            "b",
            "--port",
            str(first_port),
            "--activation-port",
            str(first_port + 1),
        ],
        "seed0": [],
        "seed0_again": ["--seed", "0"],
        "seed_other": ["--seed", "other"],
        "http": [
            *("--instance", "prod", "--instance", "backup", "--instance", "other"),
            *("--instance", "oprod", "--instance", "obackup"),
            *("--key", f"{KEY_ONLINE}:1:365", "--key", f"{KEY_OFFLINE}:1:365"),
        ],
        "tls": [
            "--tls",
            "--instance",
            "prod",
            "--instance",
            "backup",
            "--instance",
            "other",
            "--key",
            f"{KEY_ONLINE}:1",
        ],
        "tls_activation": ["--tls", "activation", "--key", f"{KEY_ONLINE}:1"],
        "own_cert": ["--tls-cert", str(own.cert), "--tls-key", str(own.key), "--instance", "a", "--instance", "b"],
        "overrides": ["--overrides", str(overrides), "--instance", "a", "--instance", "b", "--key", f"{KEY_ONLINE}:1"],
        "sigint": [],
        "sigterm": [],
        "walkthrough_online": readme_flags,
        "walkthrough_offline": readme_flags,
        "walkthrough_sequence": readme_flags,
        "readme_example": example_flags,
    }
    servers = {name: MockcoreProcess(workdir / name, args) for name, args in specs.items()}
    before = datetime.now(UTC).date()
    try:
        start_all(servers.values())
        after = datetime.now(UTC).date()
        yield Pool(servers, workdir, b_port, first_port, (before, after), own.ca_cert)
        problems = []
        for server in servers.values():
            server.send(signal.SIGTERM)
        for name, server in servers.items():
            try:
                assert_stopped_cleanly(server, server.stop(signal.SIGTERM))
            except AssertionError as exc:
                problems.append(f"{name}: {exc}")
        assert not problems, "\n".join(problems)
    finally:
        for server in servers.values():
            server.kill()


# 1. The ready file, the stdout line and the flags


def test_ready_file_and_stdout_line_are_the_same_single_line(pool: Pool) -> None:
    for name in ("flags", "seed0", "tls"):
        server = pool[name]
        assert server.ready_text.endswith("\n") and server.ready_text.count("\n") == 1, server.ready_text
        assert server.stdout_line() == server.ready_text
        assert json.loads(server.stdout_line()) == server.ready


def test_ready_document_reflects_every_flag(pool: Pool) -> None:
    server = pool["flags"]
    doc = server.ready
    assert set(doc) == {"instances", "activation_server", "apikey", "keys"}, doc
    assert list(doc["instances"]) == ["a", "b"]
    assert doc["instances"]["b"] == f"http://127.0.0.1:{pool.b_port}"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", doc["instances"]["a"]), doc
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", doc["activation_server"]), doc
    ports = [host_port(url)[1] for url in server.urls()]
    assert len(set(ports)) == 3 and 0 not in ports, ports
    assert doc["apikey"] == FLAGS_APIKEY
    keys = doc["keys"]
    assert [(k["key"], k["slots"]) for k in keys] == [(KEY_3, 3), (KEY_2, 2), (KEY_1, 1)], keys
    assert keys[0]["expires"] in pool.expiries(10), keys
    assert keys[1]["expires"] in pool.expiries(365), keys
    assert keys[2]["expires"] in pool.expiries(365), keys
    for address in server.addresses():
        assert listens(*address), address


def test_default_ready_document_is_the_readme_one(pool: Pool) -> None:
    doc = pool["seed0"].ready
    assert set(doc) == {"instances", "activation_server", "apikey", "keys"}, doc
    assert list(doc["instances"]) == ["core"]
    assert doc["apikey"] == SEED0_APIKEY
    assert [(k["key"], k["slots"]) for k in doc["keys"]] == [(SEED0_KEY, 1)]
    assert doc["keys"][0]["expires"] in pool.expiries(365)


def test_key_flags_set_slots_and_expiry(pool: Pool) -> None:
    server = pool["flags"]
    act = activation(server)
    a, b = core(server, "a"), core(server, "b")
    assert_json(a.activate(KEY_3), 200, {"success": True})
    info = a.licence()
    assert_licensed(info, a.deployment(), online=True, days_left=10)
    assert info["expiration"] == server.ready["keys"][0]["expires"]
    # KEY_3 has 3 slots: `a` holds one, two more deployments fit, a fourth does not.
    doc = assert_licence_file(act.obtain(KEY_3, b.deployment()), KEY_3, b.deployment())
    assert doc["expiration"] == info["expiration"]
    assert_licence_file(act.obtain(KEY_3, made_up_deployment(1)), KEY_3, made_up_deployment(1))
    assert_activation_failed(act.obtain(KEY_3, made_up_deployment(2)))
    for key, slots in ((KEY_2, 2), (KEY_1, 1)):
        for number in range(slots):
            assert_licence_file(act.obtain(key, made_up_deployment(number)), key, made_up_deployment(number))
        assert_activation_failed(act.obtain(key, made_up_deployment(slots)))


def test_apikey_flag_is_the_configured_key(pool: Pool) -> None:
    server = pool["flags"]
    assert core(server, "a").licence()["deployment"]
    assert core(server, "b", FLAGS_APIKEY)("/admin/license").status == 200
    for other in (identity.apikey(FLAGS_SEED), SEED0_APIKEY):
        assert_json(core(server, "a", other)("/admin/license"), 403, {"err": "Access denied"})
    assert_json(core(server, "a", None)("/admin/license"), 400, {"err": "Access denied"})


def test_admin_flag_sets_the_admin_account(pool: Pool) -> None:
    anonymous = core(pool["flags"], "a", None)
    login = anonymous("/login", "-d", json.dumps({"user": "ops", "password": "s3cret"}))
    assert login.status == 200, login
    session = login.json()
    assert set(session) == {"oms-csrf-token", "session_id"}, session
    as_ops = core(pool["flags"], "a", session["session_id"])
    user = as_ops("/user").json()
    assert (user["id"], user["name"]) == (2, "ops"), user
    assert as_ops("/admin/license").status == 200
    for user_name, password in (("admin", "admin"), ("ops", "wrong")):
        refused = anonymous("/login", "-d", json.dumps({"user": user_name, "password": password}))
        assert_json(refused, 403, {"err": "Failed to login"})
    # and the default admin:admin when the flag is absent
    default = core(pool["seed0"], "core", None)("/login", "-d", json.dumps({"user": "admin", "password": "admin"}))
    assert default.status == 200, default


def test_seed_changes_deployment_ids_default_key_and_apikey(pool: Pool) -> None:
    def identity_of(name: str) -> tuple[str, str, str]:
        server = pool[name]
        return core(server, "core").deployment(), server.key, server.apikey

    seed0, again, other = identity_of("seed0"), identity_of("seed0_again"), identity_of("seed_other")
    assert seed0 == again  # stable for a name and a seed
    assert all(DEPLOYMENT_RE.fullmatch(ids[0]) for ids in (seed0, other))
    assert seed0[0] != other[0] and seed0[1] != other[1] and seed0[2] != other[2], (seed0, other)
    assert identity.ACTIVATION_KEY_RE.fullmatch(other[1]) and identity.is_valid_apikey(other[2]), other
    flags = pool["flags"]
    assert core(flags, "a").deployment() != core(flags, "b").deployment()


def test_instances_follow_the_first_port_skipping_taken_ones(pool: Pool) -> None:
    # docs/guides/test-double.md: "--instance a --instance b is 8008 and 8010, as 8009 is the activation server's"
    specs = [InstanceSpec("prod", None), InstanceSpec("backup", None)]
    assert assign_ports(specs, 8008, 8009) == {"prod": 8008, "backup": 8010}
    server, port = pool["ports"], pool.first_port
    assert server.instances == {"a": f"http://127.0.0.1:{port}", "b": f"http://127.0.0.1:{port + 2}"}
    assert server.activation_url == f"http://127.0.0.1:{port + 1}"


# 2. Acceptance: the failovers with curl


def test_online_failover_with_curl(pool: Pool) -> None:
    server = pool["http"]
    run_online_failover(
        core(server, "prod"), core(server, "backup"), core(server, "other"), activation(server), KEY_ONLINE
    )


def test_offline_failover_with_curl(pool: Pool, tmp_path: Path) -> None:
    server = pool["http"]
    run_offline_failover(
        core(server, "oprod"), core(server, "obackup"), core(server, "other"), activation(server), KEY_OFFLINE, tmp_path
    )


# 3. TLS


def test_tls_serves_every_face_over_https_with_the_throwaway_ca(pool: Pool) -> None:
    server = pool["tls"]
    ca = server.ca_cert
    assert ca is not None and Path(ca).is_file(), server.ready
    assert Path(ca).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert all(url.startswith("https://127.0.0.1:") for url in server.urls()), server.ready
    for name in server.instances:
        response = core(server, name).version()
        assert response.status == 200 and response.json()["product_id"] == "MSCL", response
    assert_invalid_key(activation(server).obtain("not-a-key", made_up_deployment(1)))
    # the certificate also names localhost
    port = host_port(server.instances["prod"])[1]
    assert Core(f"https://localhost:{port}", server.apikey, ca).version().status == 200


def test_tls_refuses_plain_http_and_unknown_cas(pool: Pool) -> None:
    server = pool["tls"]
    for url in server.urls():
        plain = curl_process(url.replace("https://", "http://", 1) + "/version")
        assert plain.returncode != 0, (url, plain)
        untrusted = curl_process(url + "/version")
        assert untrusted.returncode == 60, (url, untrusted)  # curl: peer certificate cannot be authenticated


def test_online_failover_over_https_with_curl(pool: Pool) -> None:
    server = pool["tls"]
    run_online_failover(
        core(server, "prod"), core(server, "backup"), core(server, "other"), activation(server), KEY_ONLINE
    )


def test_tls_activation_only(pool: Pool) -> None:
    server = pool["tls_activation"]
    ca = server.ca_cert
    assert ca is not None and Path(ca).is_file(), server.ready
    url = server.instances["core"]
    assert url.startswith("http://"), server.ready
    assert server.activation_url.startswith("https://"), server.ready
    instance, act = core(server, "core"), activation(server)
    assert instance.version().status == 200
    assert curl_process("--cacert", ca, url.replace("http://", "https://", 1) + "/version").returncode != 0
    assert_invalid_key(act.obtain("not-a-key", made_up_deployment(1)))
    assert curl_process(server.activation_url.replace("https://", "http://", 1) + "/activation").returncode != 0
    # an online activation still reaches the (in-process) activation server
    assert_json(instance.activate(KEY_ONLINE), 200, {"success": True})
    assert_licence_file(act.obtain(KEY_ONLINE, instance.deployment()), KEY_ONLINE, instance.deployment())


def test_own_certificate_and_key(pool: Pool) -> None:
    server = pool["own_cert"]
    ca = str(pool.own_ca)
    assert all(url.startswith("https://127.0.0.1:") for url in server.urls()), server.ready
    for name in ("a", "b"):
        response = Core(server.instances[name], server.apikey, ca).version()
        assert response.status == 200 and response.json()["product_id"] == "MSCL", response
    assert_invalid_key(Activation(server.activation_url, ca).obtain("not-a-key", made_up_deployment(1)))
    for url in server.urls():
        assert curl_process(url.replace("https://", "http://", 1) + "/version").returncode != 0, url
        assert curl_process(url + "/version").returncode == 60, url


# 4. Start-up errors


@dataclass(frozen=True)
class BadStart:
    args: list[str]
    says: list[str]  # fragments the message must contain
    status: int | None = None  # None: any non-zero


def _bad_starts(workdir: Path, busy: int, cert: Path) -> dict[str, BadStart]:
    unknown, malformed, bad_status = workdir / "unknown.yml", workdir / "malformed.yml", workdir / "status.yml"
    missing = workdir / "missing.yml"
    key = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG"
    return {
        "key-format": BadStart(["--key", "not-a-key"], ["not-a-key", "seven groups of four"]),
        "key-slots": BadStart(["--key", f"{key}:many"], [f"{key}:many", "KEY[:SLOTS[:DAYS]]"]),
        "key-parts": BadStart(["--key", f"{key}:1:2:3"], ["KEY[:SLOTS[:DAYS]]"]),
        "key-duplicate": BadStart(["--key", key, "--key", f"{key}:2"], ["activation keys must be unique"]),
        "apikey-format": BadStart(["--apikey", "not-hex"], ["--apikey", "36 chars of 0-9a-f"]),
        "apikey-runs": BadStart(["--apikey", "abcdef0123456789abcdef0123456789abcd"], ["--apikey", "in a row"]),
        "admin-no-colon": BadStart(["--admin", "adminonly"], ["--admin", "USER:PASSWORD"]),
        "admin-empty-user": BadStart(["--admin", ":secret"], ["--admin", "USER:PASSWORD"]),
        "instance-duplicate": BadStart(["--instance", "a", "--instance", "a"], ["instance names must be unique"]),
        "instance-duplicate-port": BadStart(
            ["--instance", "a", "--instance", f"a={free_port()}"], ["instance names must be unique"]
        ),
        "instance-name": BadStart(["--instance", "bad/name"], ["bad/name", "NAME=PORT"]),
        "overrides-unknown-code": BadStart(
            ["--overrides", str(unknown)], ["--overrides", "E_BOGUS", "unknown error code"]
        ),
        "overrides-malformed": BadStart(
            ["--overrides", str(malformed)], ["--overrides", str(malformed), "not valid YAML"]
        ),
        "overrides-bad-status": BadStart(["--overrides", str(bad_status)], ["--overrides", "errors.E_NO_SLOT.status"]),
        "overrides-missing": BadStart(["--overrides", str(missing)], ["--overrides", str(missing), "cannot read"]),
        "tls-cert-alone": BadStart(["--tls-cert", str(cert)], ["--tls-cert and --tls-key go together"], 2),
        "tls-key-alone": BadStart(["--tls-key", str(cert)], ["--tls-cert and --tls-key go together"], 2),
        "port-in-use": BadStart(["--port", str(busy)], ["cannot listen", str(busy), "Address already in use"]),
        "activation-port-in-use": BadStart(
            ["--activation-port", str(busy)], ["cannot listen", str(busy), "Address already in use"]
        ),
        "instance-port-in-use": BadStart(
            ["--instance", "a", "--instance", f"b={busy}"], ["cannot listen", str(busy), "Address already in use"]
        ),
    }


BAD_START_IDS = list(_bad_starts(Path("/nonexistent"), 1, Path("/nonexistent")))


@dataclass
class BadStartRun:
    case: BadStart
    exited: Exited
    ready_written: bool


@pytest.fixture(scope="module")
def bad_start_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, BadStartRun]]:
    """Run every bad start-up at once (each must exit by itself); a port is held busy meanwhile."""
    workdir = tmp_path_factory.mktemp("bad-starts")
    cert = make_throwaway_ca(workdir / "tls", ["127.0.0.1"]).cert
    (workdir / "unknown.yml").write_text("errors:\n  E_BOGUS: {status: 409}\n")
    (workdir / "malformed.yml").write_text("errors: [unclosed\n  - : :\n")
    (workdir / "status.yml").write_text("errors:\n  E_NO_SLOT: {status: 99}\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cases = _bad_starts(workdir, busy.getsockname()[1], cert)
        processes = {name: MockcoreProcess(workdir / name, case.args) for name, case in cases.items()}
        exits = run_all(processes.values())
    yield {
        name: BadStartRun(cases[name], exited, process.ready_file.exists())
        for (name, process), exited in zip(processes.items(), exits, strict=True)
    }


@pytest.mark.parametrize("name", BAD_START_IDS)
def test_bad_start_exits_with_a_clear_message(bad_start_runs: dict[str, BadStartRun], name: str) -> None:
    run = bad_start_runs[name]
    exited = run.exited
    assert exited.returncode != 0, exited
    if run.case.status is not None:
        assert exited.returncode == run.case.status, exited
    assert "Traceback" not in exited.stderr, exited.stderr
    for fragment in run.case.says:
        assert fragment in exited.stderr, (fragment, exited.stderr)
    assert exited.stdout == "" and not run.ready_written, exited


def test_overrides_change_the_catalogue_and_the_version(pool: Pool, tmp_path: Path) -> None:
    server = pool["overrides"]
    a, b, act = core(server, "a"), core(server, "b"), activation(server)
    assert_json(a.version(), 200, {"product_id": "MSCL", "version": "5.8.0"})
    assert_json(a.activate(KEY_ONLINE), 200, {"success": True})
    assert_json(b.activate(KEY_ONLINE), 409, {"err": "No license slot left"})
    assert_json(b.nominate(), 400, {"err": NOT_BACKUP})  # not overridden: the default entry
    licence_file = tmp_path / "a.yml"
    assert_licence_file(act.obtain(KEY_ONLINE, a.deployment(), output=licence_file), KEY_ONLINE, a.deployment())
    assert_json(b.register_offline(licence_file), 200, {"success": REGISTERED})
    assert_json(b.nominate(), 400, {"err": "Offline backups cannot be nominated"})  # text only: status kept
    # without overrides, the default version
    assert a.version().json() != core(pool["seed0"], "core").version().json()


# 5. Signals


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly(pool: Pool, signum: signal.Signals) -> None:
    server = pool[signum.name.lower()]
    assert core(server, "core").version().status == 200
    exited = server.stop(signum)
    assert_stopped_cleanly(server, exited)
    assert exited.stdout == server.ready_text, exited.stdout  # the one JSON line, nothing else


# 6. The walkthroughs of docs/guides/test-double.md and the README's example, as written


ONLINE = "## Walkthrough: an online failover with curl"
OFFLINE = "## Walkthrough: an offline failover"


def test_readme_online_walkthrough(pool: Pool, tmp_path: Path) -> None:
    server = pool["walkthrough_online"]
    commands = walkthrough(ONLINE)
    assert sum(c.expect is not None for c in commands) >= 4, commands
    assert run_walkthrough(server, commands, tmp_path) == []


def test_readme_offline_walkthrough_on_a_fresh_fleet(pool: Pool, tmp_path: Path) -> None:
    """The offline block after only the online block's variables (API, KEY, PROD, BACKUP, DEP)."""
    server = pool["walkthrough_offline"]
    setup = [c for c in walkthrough(ONLINE) if re.match(r"^[A-Z]+=", c.text)]
    assert {c.text.split("=", 1)[0] for c in setup} == {"API", "KEY", "PROD", "DEP"}, setup
    commands = walkthrough(OFFLINE)
    assert sum(c.expect is not None for c in commands) >= 3, commands
    assert run_walkthrough(server, setup + commands, tmp_path) == []
    backup = core(server, "backup")
    assert_licensed(backup.licence(), backup.deployment(), online=False)
    assert backup.is_backup() is False


def test_readme_walkthroughs_in_sequence_as_written(pool: Pool, tmp_path: Path) -> None:
    server = pool["walkthrough_sequence"]
    assert run_walkthrough(server, walkthrough(ONLINE) + walkthrough(OFFLINE), tmp_path) == []


def test_readme_example_as_written(pool: Pool, tmp_path: Path) -> None:
    """The README's 30-second example, on a `mockcore serve` with its flags (none: the defaults)."""
    server = pool["readme_example"]
    assert readme_serve_flags(EXAMPLE, README) == []
    commands = walkthrough(EXAMPLE, README)
    assert sum(c.expect is not None for c in commands) >= 4, commands
    assert run_walkthrough(server, commands, tmp_path) == []
    deployment = core(server, "core").deployment()
    assert core(server, "core").licence() == {"deployment": deployment, "deployment_id": deployment}  # reset


# 7. What the guide says about `mockcore serve`


def _serve_section() -> str:
    text = GUIDE.read_text()
    start = text.index("## `mockcore serve`")
    return text[start : text.index("\n## ", start + 1)]


def test_the_guides_ready_line_is_what_seed_0_prints(pool: Pool) -> None:
    section = _serve_section()
    begin = section.index("```json\n") + len("```json\n")
    documented = json.loads(section[begin : section.index("```", begin)])
    served = pool["seed0"].ready
    assert set(documented) == set(served), (documented, served)
    assert list(documented["instances"]) == list(served["instances"]) == ["core"]
    assert documented["instances"]["core"] == "http://127.0.0.1:8008"
    assert documented["activation_server"] == "http://127.0.0.1:8009"
    assert documented["apikey"] == served["apikey"] == SEED0_APIKEY
    assert [(k["key"], k["slots"]) for k in documented["keys"]] == [(k["key"], k["slots"]) for k in served["keys"]]
    assert EXPIRATION_RE.fullmatch(documented["keys"][0]["expires"]), documented


def test_the_guides_flag_table_lists_every_option_of_serve() -> None:
    import click

    from mockcore.cli import main

    serve = main.commands["serve"]
    options = {
        name for param in serve.params if isinstance(param, click.Option) for name in param.opts if name != "--help"
    }
    rows = [line for line in _serve_section().splitlines() if line.startswith("| `")]
    documented = {flag for row in rows for flag in re.findall(r"(--[a-z][a-z-]*)", row.split("|")[1])}
    assert documented == options, documented ^ options
