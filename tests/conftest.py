"""Shared fixtures: torch threading, random-weight Kokoro on disk, running servers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

from benchmarks.models.kokoro import build_random_kokoro

# On a 2-core machine one intra-op thread is faster than two once anything else runs.
torch.set_num_threads(int(os.environ.get("TTS_TEST_TORCH_THREADS", "1")))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test must never reach for the Hub
# What servers under test persist (usage records) goes to a scratch directory, never the user's own.
os.environ.setdefault("XDG_DATA_HOME", tempfile.mkdtemp(prefix="tts-tests-data-"))
# Kokoro compiles its vocoder on a CPU by default (minutes per engine): the tests' engines run eagerly
# unless a test asks (test_batching.py checks the default's wiring, test_batched_forward.py Inductor).
os.environ.setdefault("TTS_KOKORO_COMPILE", "off")
# Likewise bf16 decoding on a CPU with AMX: the tests' expectations are fp32's on every CPU
# (test_precision.py and tests/e2e/test_cpu_defaults.py check bf16).
os.environ.setdefault("TTS_KOKORO_DTYPE", "float32")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def kokoro_dir(tmp_path_factory) -> Path:
    """A full-size Kokoro-82M with random weights in the HF layout (327 MB, ~5 s)."""
    return build_random_kokoro(tmp_path_factory.mktemp("kokoro-random"))
