"""The suite's own configuration makes failures visible: an exception in a test's thread fails it.

A probe thread or a soak client that dies must not leave its test green. pytest reports such an
exception as ``PytestUnhandledThreadExceptionWarning``; pyproject.toml turns that warning into an
error. Checked by running pytest, with this project's configuration, on a generated test file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TESTS = """
import threading


def test_raises_in_a_thread():
    def boom():
        raise RuntimeError("the probe died")

    thread = threading.Thread(target=boom)
    thread.start()
    thread.join()


def test_a_quiet_thread():
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()


def test_a_user_warning_is_reported_not_hidden():
    import warnings

    warnings.warn("shown in the summary", UserWarning)
"""


def test_an_exception_in_a_tests_thread_fails_that_test(tmp_path):
    (tmp_path / "test_generated.py").write_text(TESTS)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), "-rfw", str(tmp_path / "test_generated.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "FAILED" in out and "test_raises_in_a_thread" in out and "the probe died" in out, out
    assert "1 failed, 2 passed" in out, out
    assert "shown in the summary" in out, out  # UserWarnings are no longer swallowed wholesale
