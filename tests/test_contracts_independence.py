"""contracts never imports mockcore: every module of the package imports with mockcore made unimportable."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import contracts


def test_contracts_imports_without_mockcore() -> None:
    modules = sorted(m.name for m in pkgutil.walk_packages(contracts.__path__, "contracts."))
    assert "contracts.model" in modules and "contracts.client.harness" in modules
    code = (
        "import sys; sys.modules['mockcore'] = None\n"  # any `import mockcore...` now raises ImportError
        f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
        "assert not any(m == 'mockcore' or m.startswith('mockcore.') for m in sys.modules if sys.modules[m])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
