"""An installed copy (the wheel, not the source tree) runs `tts-server bench engine`.

The wheel is built from the working tree's files, installed with no dependencies into a fresh venv
that sees this interpreter's packages (torch, transformers: nothing is downloaded), and run from a
directory outside the checkout with no PYTHONPATH, so only what the wheel ships can be imported: a
benchmark that imports ``tests`` or a model builder left out of the wheel fails here. Deselected by
default (about a minute); CI runs it as its own step (`pytest -m wheel`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[2]


def source_copy(dest: Path) -> Path:
    """The files git would commit (tracked and new, not ignored): no build/ or egg-info in the checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(the venv's bin directory, an environment without this checkout on the path)."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    src = source_copy(root / "src")
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist")]
        + [str(src)],
        cwd=root,
        env=env,
        timeout=300,
    )
    (wheel,) = (root / "dist").glob("tts_server-*.whl")
    shipped = zipfile.ZipFile(wheel).namelist()
    assert "benchmarks/models/orpheus.py" in shipped and "benchmarks/models/kokoro-82m-config.json" in shipped
    assert not any(name.startswith("tests/") for name in shipped)
    run([sys.executable, "-m", "venv", "--system-site-packages", str(root / "venv")], cwd=root, env=env, timeout=120)
    bin_dir = root / "venv" / "bin"
    run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        cwd=root,
        env=env,
        timeout=300,
    )
    return bin_dir, env


def test_the_installed_copy_is_the_one_imported(installed, tmp_path):
    bin_dir, env = installed
    probe = "import benchmarks.models, server; print(benchmarks.models.__file__); print(server.__file__)"
    out = run([str(bin_dir / "python"), "-c", probe], cwd=tmp_path, env=env, timeout=60).stdout.split()
    venv = str(bin_dir.parent)
    assert all(path.startswith(venv) for path in out), out
    tests_importable = subprocess.run([str(bin_dir / "python"), "-c", "import tests"], cwd=tmp_path, env=env)
    assert tests_importable.returncode != 0  # what a user's machine has: no test suite


def test_the_installed_copy_runs_bench_engine_with_a_tiny_model(installed, tmp_path):
    bin_dir, env = installed
    out = tmp_path / "out"
    cmd = [str(bin_dir / "tts-server"), "bench", "engine", "--model", "orpheus", "--orpheus-tiny", "--device", "cpu"]
    cmd += ["--batches", "1", "--repeats", "1", "--threads", "1", "--extra", '{"max_tokens": 28}', "--out", str(out)]
    run(cmd, cwd=tmp_path, env={**env, "HF_HUB_OFFLINE": "1"}, timeout=600)
    report = json.loads((out / "engine.json").read_text())
    assert report["model"] == "canopylabs/orpheus-3b-0.1-ft" and report["orpheus_tiny"] is True
    assert report["rows"] and report["rows"][0]["audio_per_wall"] > 0
