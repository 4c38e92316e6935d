"""The package is typed (py.typed): mypy checks it, its stubs and its pure-Python parts
strictly where they run on compute nodes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import skip

PKG = Path(__file__).resolve().parents[1] / "python"


def test_mypy_passes() -> None:
    try:
        import mypy  # noqa: F401
    except ImportError:
        skip("mypy is not installed (.ci/run installs it)")
    run = lambda *a: subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir=/dev/null", *a], cwd=PKG, capture_output=True, text=True)  # noqa: E731
    r = run("soam", "soamapi", "soamapiversion")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("--strict", "soam/service.py", "soam/errors.py")
    assert r.returncode == 0, r.stdout + r.stderr
