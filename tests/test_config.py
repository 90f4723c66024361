"""One configuration, one builder: `mockcore serve` (a real subprocess, through `python -m mockcore`) and
`MockFleet` take the same arguments through mockcore.config, with the same defaults and the same errors."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mockcore import MockFleet
from mockcore.config import ConfigError, parse_fleet
from tests.serving import MockcoreProcess

KEY = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG"
APIKEY = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"

# (flags of `mockcore serve`, the same as MockFleet arguments, a fragment both errors carry)
BAD: list[tuple[list[str], dict[str, Any], str]] = [
    (["--key", "not-a-key"], {"keys": ["not-a-key"]}, "seven groups of four"),
    (["--key", f"{KEY}:many"], {"keys": [f"{KEY}:many"]}, "KEY[:SLOTS[:DAYS]]"),
    (["--key", f"{KEY}:1:2:3"], {"keys": [f"{KEY}:1:2:3"]}, "KEY[:SLOTS[:DAYS]]"),
    (["--key", f"{KEY}:100001"], {"keys": [f"{KEY}:100001"]}, "slots must be a whole number from 0 to 100000"),
    (["--key", f"{KEY}:1:36501"], {"keys": [f"{KEY}:1:36501"]}, "days must be a whole number from 0 to 36500"),
    (["--key", KEY, "--key", f"{KEY}:2"], {"keys": [KEY, f"{KEY}:2"]}, "activation keys must be unique"),
    (["--apikey", "not-hex"], {"apikey": "not-hex"}, "an API key is 36 chars of 0-9a-f"),
    (["--admin", "adminonly"], {"admin": "adminonly"}, "USER:PASSWORD"),
    (["--admin", ":secret"], {"admin": ":secret"}, "USER:PASSWORD"),
    (["--admin", "admin:"], {"admin": "admin:"}, "USER:PASSWORD"),
    (["--instance", "a", "--instance", "a"], {"instances": ("a", "a")}, "instance names must be unique: a"),
    (["--instance", "activation_server"], {"instances": ("activation_server",)}, "the activation server's name"),
]


@pytest.mark.parametrize(("flags", "arguments", "message"), BAD, ids=[m for _, _, m in BAD])
def test_a_bad_argument_is_refused_alike(flags: list[str], arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        MockFleet(**arguments)
    assert message in str(refused.value)
    result = subprocess.run(
        [sys.executable, "-m", "mockcore", "serve", "--port", "0", "--activation-port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert str(refused.value) in " ".join(result.stderr.split()), result.stderr


def test_the_same_good_arguments_make_the_same_fleet(tmp_path: Path) -> None:
    """An empty KEY part is the seed's key for both (the CLI used to refuse it), and every default agrees."""
    flags = ["--instance", "a", "--instance", "b", "--key", ":3:30", "--key", f"{KEY}:2"]
    flags += ["--seed", "7", "--apikey", APIKEY, "--admin", "ops:secret"]
    process = MockcoreProcess(tmp_path, flags).start()
    try:
        served = process.wait_ready()
    finally:
        process.stop()
    mock = MockFleet(("a", "b"), [":3:30", f"{KEY}:2"], seed=7, apikey=APIKEY, admin="ops:secret")
    assert list(served["instances"]) == list(mock.instances)
    assert served["apikey"] == mock.apikey
    started = mock.fleet.started.date()
    expected = [
        {"key": key.key, "slots": key.slots, "expires": key.terms.expires.strftime("%m/%d/%Y")}
        for key in mock.fleet.activation_keys()
    ]
    assert served["keys"] == expected
    assert [key.terms.expires - started for key in mock.fleet.activation_keys()] == [
        timedelta(days=30),
        timedelta(days=365),
    ]
    assert (
        mock.fleet.config
        == parse_fleet(("a", "b"), [":3:30", f"{KEY}:2"], seed="7", apikey=APIKEY, admin="ops:secret").config
    )


def test_the_defaults_are_one_instance_and_one_seed_key() -> None:
    setup = parse_fleet()
    assert setup.config.instances == ("core",)
    assert [(k.slots, k.days) for k in setup.config.resolved_keys()] == [(1, 365)]
    assert setup.config.admin_user == setup.config.admin_password == "admin"
    assert setup.journal_cap == 1000


@pytest.mark.parametrize(
    ("module", "says"),
    [("mockcore", "serve"), ("mockcore.cli", "serve"), ("contracts", "server"), ("contracts.cli", "server")],
)
def test_python_dash_m_runs_each_command_line(module: str, says: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and says in result.stdout, result.stdout
