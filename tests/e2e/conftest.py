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


@pytest.fixture(scope="session")
def together_v1_python() -> str:
    """A small separate environment with the v1 SDK (`together<2`), which cannot sit beside v2."""
    venv = CACHE / "together-v1"
    python = venv / "bin" / "python"
    if not python.exists() or subprocess.run([python, "-c", "import together"], capture_output=True).returncode:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "together>=1.5,<2", "numpy"], check=True)
    return str(python)
