"""The layers of docs/architecture.md, checked by import-linter (its contracts are in pyproject.toml): the run on
the project keeps every contract, and a copy of the project with one forbidden import added breaks one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the copy's packages shadow the installed (editable) ones.
    env = {**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1"}
    env.pop("IMPORT_LINTER_CACHE_DIR", None)
    return subprocess.run(
        [*LINT, str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_layer_contract_is_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "added", "broken"),
    [
        ("mockcore/http/core_api.py", "import mockcore.demo.runner", "The HTTP layer does not import the demos"),
        ("mockcore/rules.py", "import mockcore.fleet", "The decision core is pure"),
        ("mockcore/lifecycle.py", "import flask", "The decision core is pure"),
        ("contracts/model.py", "import mockcore.catalogue", "contracts never imports mockcore"),
        ("mockcore/fleet.py", "import mockcore.server", "mockcore is layered"),
        ("mockcore/lifecycle.py", "import mockcore.rules", "No import cycles between mockcore's modules"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, added: str, broken: str) -> None:
    for package in ("mockcore", "contracts"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{added}  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    verdict = re.search(re.escape(broken) + r".{0,200}?\b(KEPT|BROKEN)\b", " ".join(result.stdout.split()))
    assert verdict is not None and verdict[1] == "BROKEN", result.stdout
