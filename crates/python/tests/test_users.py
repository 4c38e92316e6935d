"""The Python client as another user of a shared agent: kept out of others' sessions with
PermissionDenied. Needs root and another uid able to run python3 and the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import soam
from conftest import Agent, profile, skip

NOBODY = 65534


def test_another_user_gets_permission_denied() -> None:
    if os.geteuid() != 0:
        skip("needs root to run a client as another user")
    py = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    pkg = os.environ.get("PYTHONPATH", "")
    probe = subprocess.run([py, "-c", "import soam._native"], user=NOBODY, group=NOBODY, capture_output=True, env={"PYTHONPATH": pkg})
    if probe.returncode != 0:
        skip(
            f"uid {NOBODY} cannot run {py} with the package ({probe.stderr.decode().strip().splitlines()[-1:]}); "
            "where / is mode 0700 run through ../shared/tools/ns-run.sh"
        )
    home = Path(tempfile.mkdtemp(prefix="soam-users-"))
    home.chmod(0o755)
    a = Agent(home, shared=True)
    a.start()
    try:
        a.register("h.yaml", profile("h", "hooks.py", types='  - name: Keep\n    onClientDisconnect: continue\n'))
        env = dict(os.environ, SOAM_HOME=str(home), SOAM_NO_AUTOSTART="1")
        mine = soam.connect(home / "run" / "soamd.sock").create_session("h", type="Keep")
        code = (
            "import soam, sys\n"
            f"c = soam.connect({str(home / 'run' / 'soamd.sock')!r})\n"
            "try:\n"
            f"    c.open_session({mine.address!r})\n"
            "    print('opened')\n"
            "except soam.PermissionDenied as e:\n"
            "    print('denied', e.kind, e)\n"
            "try:\n"
            "    c.create_session('h').close()\n"
            "    print('own session ok')\n"
            "except soam.SoamError as e:\n"
            "    print('own session failed', e)\n"
        )
        env = {"PYTHONPATH": pkg, "SOAM_NO_AUTOSTART": "1", "HOME": "/"}
        out = subprocess.run([py, "-c", code], user=NOBODY, group=NOBODY, capture_output=True, env=env, timeout=60)
        text = out.stdout.decode()
        assert out.returncode == 0, out.stderr.decode()
        first, second = text.strip().splitlines()
        assert first.startswith("denied permission "), text
        assert second == "own session ok", text
        mine.close()
    finally:
        a.stop()
        shutil.rmtree(home, ignore_errors=True)
