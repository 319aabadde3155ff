"""The dependency direction and the public names of api_client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import api_client
import api_client.simulator

FORBIDDEN = ("lupa", "celery", "redis", "sandbox", "worker")
REPO = Path(api_client.__file__).resolve().parent.parent


def test_importing_api_client_loads_no_lua_queue_or_sandbox_module():
    """In a fresh interpreter, api_client and its simulator pull in none of FORBIDDEN."""
    code = (
        "import json, sys\n"
        "import api_client, api_client.simulator\n"
        "api_client.load_catalog()\n"
        f"names = {FORBIDDEN!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in names)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == []


def test_exported_names_exist_and_are_listed_once():
    """Every name in __all__ is importable, and none is listed twice."""
    for module in (api_client, api_client.simulator):
        assert len(set(module.__all__)) == len(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
