"""Inductor's cache follows the server's data directory, so a restart reads compiled kernels back."""

from __future__ import annotations

import os
from pathlib import Path

from server.data_dir import use_compile_cache


def test_the_compile_cache_lives_in_the_data_dir_unless_set(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert use_compile_cache(None, tmp_path) == tmp_path / "compile-cache"
    assert Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]) == tmp_path / "compile-cache"

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    assert use_compile_cache(tmp_path / "kernels", tmp_path) == tmp_path / "kernels"  # TTS_COMPILE_CACHE_DIR

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/srv/inductor")  # the operator's own wins
    assert use_compile_cache(tmp_path / "kernels", tmp_path) == Path("/srv/inductor")
