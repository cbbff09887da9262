"""End-to-end tests: the real `tts-server serve` process, real clients (SDKs, httpx, curl-like)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.launcher import launch_server

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TTS_TEST_CACHE", Path.home() / ".cache" / "tts-server-tests"))


@pytest.fixture(scope="session")
def kokoro_server(kokoro_dir):
    """Kokoro with random weights behind the CLI, with a tiny queue so overload is reachable."""
    args = (
        "--kokoro-source",
        str(kokoro_dir),
        "--device",
        "cpu",
        "--torch-threads",
        "1",
        "--max-queue-size",
        "2",
        "--max-batch-size",
        "2",
        "--log-level",
        "warning",
    )
    with launch_server(*args) as base:
        yield base


def sdk_venv(name: str, requirement: str) -> str:
    """A small separate environment holding one release of the together SDK (they cannot sit side by side)."""
    venv = CACHE / name
    python = venv / "bin" / "python"
    check = f"import importlib.metadata as m, sys; sys.exit(m.version('together') != '{requirement.split('==')[-1]}')"
    pinned = "==" in requirement
    if not python.exists() or subprocess.run([python, "-c", check if pinned else "import together"]).returncode:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", requirement, "numpy"], check=True)
    return str(python)


@pytest.fixture(scope="session")
def together_v1_python() -> str:
    """The v1 SDK (`together<2`, still widely used)."""
    return sdk_venv("together-v1", "together>=1.5,<2")


@pytest.fixture(scope="session")
def together_v2_python() -> str:
    """The v2 line (2.x takes base_url as given; the main environment has v3, which appends /v1)."""
    return sdk_venv("together-v2", "together==2.42.0")
