"""Run metadata: where the client ran (CPU model and cores, memory, GPU), software, git revision."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _run(*cmd: str, cwd: Path | None = None) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=cwd)
        if done.returncode == 0:
            return done.stdout.strip()
    return None


def git_revision() -> dict[str, Any]:
    commit = _run("git", "rev-parse", "HEAD", cwd=REPO)
    if commit is None:
        return {"commit": None}
    dirty = bool(_run("git", "status", "--porcelain", "--untracked-files=no", cwd=REPO))
    return {"commit": commit, "dirty": dirty, "describe": _run("git", "describe", "--always", "--dirty", cwd=REPO)}


def cpu_model() -> str:
    out = _run("lscpu")
    for line in (out or "").splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    out = _run("nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader")
    return [line.strip() for line in (out or "").splitlines() if line.strip()]


def hardware() -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "memory_gib": memory_gib(),
        "gpus": gpus(),
        "host": platform.node(),
        "os": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def software() -> dict[str, Any]:
    versions: dict[str, Any] = {"python": sys.version.split()[0]}
    for package in ("tts-server", "httpx", "torch", "kokoro", "transformers", "soundfile", "av"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def describe_hardware(hw: dict[str, Any]) -> str:
    gpu = ", ".join(hw.get("gpus") or []) or "no GPU"
    return f"{hw.get('cpu')}, {hw.get('cores')} cores, {hw.get('memory_gib')} GiB, {gpu}"
