"""Per-request deadline and the shutdown cut-off, applied to a response's stream of audio.

:func:`bounded` wraps the items a route sends: waiting for the next one stops at the request's
deadline (``request_timeout_s`` from its arrival) with :class:`DeadlineExceeded`, or when the
shutdown's grace period ends with a 503-class error. Raised before the response starts, that is a
504 (or 503) in Together's shape; once an SSE stream runs, the route's framing turns it into a
final error event followed by ``[DONE]``. Either way the source is closed, which cancels the
engine session, so the model stops working for the request at its next step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from server.errors import DeadlineExceeded, ServiceUnavailable, TTSError
from server.request_log import current

T = TypeVar("T")


def shutdown_error() -> TTSError:
    return ServiceUnavailable(
        "The server is shutting down and ended this request; retry on another replica.", code="server_shutdown"
    )


async def bounded(app_state: Any, items: AsyncIterator[T]) -> AsyncIterator[T]:
    """``items``, until the request's deadline or the end of the shutdown grace period.

    The wait for each item runs in the consumer's own task (no helper task: a client that leaves
    cancels that task, and the cancellation must reach the source directly so it closes at once).
    A timer and the shutdown's abort cancel the task only while it waits here, and the
    cancellation they caused is turned into the error above.
    """
    timeout = app_state.settings.request_timeout_s
    drain = app_state.drain
    trace = current()
    elapsed = trace.elapsed() if trace is not None else 0.0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, timeout - elapsed)
    async with contextlib.aclosing(items):
        while True:
            # The task may change between items (the first one is awaited under unless_disconnected).
            task = asyncio.current_task()
            assert task is not None
            reason: list[TTSError] = []

            def cut(error_factory: Any, reason: list[TTSError] = reason, task: asyncio.Task = task) -> None:
                if not reason:
                    reason.append(error_factory())
                    task.cancel()

            timer = loop.call_at(deadline, cut, lambda: _deadline_error(timeout))
            unsubscribe = drain.on_abort(lambda: cut(shutdown_error))
            try:
                item = await anext(items)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if not reason:
                    raise  # not ours: the client left, or the server is cancelling the request
                if hasattr(task, "uncancel"):
                    task.uncancel()
                if trace is not None:
                    trace.error_code = reason[0].code
                raise reason[0] from None
            finally:
                timer.cancel()
                unsubscribe()
            yield item


def _deadline_error(timeout: float) -> DeadlineExceeded:
    return DeadlineExceeded(f"The request did not complete within {timeout:g} s (TTS_REQUEST_TIMEOUT_S).")
