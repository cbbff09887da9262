"""The engine pool's supervision: a restart runs as its own task, so it never holds up another model."""

from __future__ import annotations

import asyncio

from server.engine_pool import EnginePool
from server.settings import Settings
from tests.support.fake_engine import FakeEngine


class FlakyEngine(FakeEngine):
    """A stand-in model whose health the test sets, and whose reloads can be held at a gate."""

    def __init__(self, model_id: str) -> None:
        super().__init__(model_id)
        self.fault: str | None = None
        self.loads = 0
        self.closes = 0
        self.gate: asyncio.Event | None = None  # set: reloads wait for it

    async def load(self) -> None:
        self.loads += 1
        if self.loads > 1 and self.gate is not None:
            await self.gate.wait()
        self.fault = None

    async def close(self) -> None:
        self.closes += 1

    def health(self) -> str | None:
        return self.fault


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_slow_restart_does_not_hold_up_another_models_health_check_or_restart():
    slow, other = FlakyEngine("hexgrad/Kokoro-82M"), FlakyEngine("canopylabs/orpheus-3b-0.1-ft")
    settings = Settings(models=[], warmup=False, watchdog_s=0.2, engine_max_restarts=2)
    pool = EnginePool(settings, engines={slow.model_id: slow, other.model_id: other})
    pool.start()
    try:
        await until(lambda: set(pool.status.values()) == {"ready"})
        slow.gate = asyncio.Event()  # its reload will hang until the end of the test
        slow.fault = "the worker thread exited"
        await until(lambda: pool.status[slow.model_id] == "restarting" and slow.loads == 2)
        assert pool.errors[slow.model_id] == "the worker thread exited"

        # Meanwhile the other model fails: noticed within a poll, and restarted, while the first still hangs.
        other.fault = "a step made no progress for 0.2 s"
        await until(lambda: pool.status[other.model_id] == "restarting", timeout=2)
        await until(lambda: pool.status[other.model_id] == "ready" and other.loads == 2)
        assert pool.restarts == {slow.model_id: 1, other.model_id: 1} and other.closes == 1
        assert pool.status[slow.model_id] == "restarting" and pool.state == "failed"

        slow.gate.set()  # the hung reload completes: both models serve again
        await until(lambda: pool.status[slow.model_id] == "ready")
        assert pool.state == "ready" and slow.model_id not in pool.errors
    finally:
        await pool.close()


async def test_closing_the_pool_cancels_a_restart_in_progress():
    engine = FlakyEngine("hexgrad/Kokoro-82M")
    pool = EnginePool(Settings(models=[], warmup=False, watchdog_s=0.2), engines={engine.model_id: engine})
    pool.start()
    await until(lambda: pool.status[engine.model_id] == "ready")
    engine.gate = asyncio.Event()  # never set: the reload hangs
    engine.fault = "the worker thread exited"
    await until(lambda: engine.loads == 2)
    await asyncio.wait_for(pool.close(), timeout=5)
    assert not pool._restarting and engine.closes >= 2  # the restart's own close, then the pool's
