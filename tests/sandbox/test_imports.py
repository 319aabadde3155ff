"""The sandbox's dependency direction and public names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import sandbox

REPO = Path(__file__).resolve().parents[2]


def test_importing_sandbox_loads_no_http_or_queue_module():
    """Importing sandbox (and running a script) never loads httpx, celery or redis."""
    code = (
        "import sys, sandbox, sandbox.testing\n"
        "sandbox.run_script('return 1')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'celery', 'redis'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_sandbox_works_after_fakeredis_loaded_another_lua():
    """lupa.lua54 keeps its own Lua even when fakeredis loaded Lua 5.1 with RTLD_GLOBAL."""
    code = "import fakeredis, sandbox\nprint(sandbox.run_script('return _VERSION').result[0])\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Lua 5.4"


def test_exported_names_match_all():
    """__all__ lists exactly the public names the package exports."""
    public = {
        name for name, value in vars(sandbox).items() if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert set(sandbox.__all__) == public
