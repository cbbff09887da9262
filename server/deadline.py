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
    """``items``, until the request's deadline or the end of the shutdown grace period."""
    timeout = app_state.settings.request_timeout_s
    trace = current()
    elapsed = trace.elapsed() if trace is not None else 0.0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, timeout - elapsed)
    aborted = app_state.drain.aborted
    abort_wait = asyncio.ensure_future(aborted.wait())
    step: asyncio.Future[T] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(items))
            done, _ = await asyncio.wait(
                {step, abort_wait}, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
            )
            if step in done:
                finished, step = step, None
                try:
                    item = finished.result()
                except StopAsyncIteration:
                    return
                yield item
                continue
            error = shutdown_error() if aborted.is_set() else _deadline_error(timeout)
            if trace is not None:
                trace.error_code = error.code
            raise error
    finally:
        abort_wait.cancel()
        if step is not None and not step.done():  # the source is mid-item: stop it before closing it
            step.cancel()
            with contextlib.suppress(BaseException):
                await step
        await items.aclose()  # type: ignore[attr-defined]


def _deadline_error(timeout: float) -> DeadlineExceeded:
    return DeadlineExceeded(f"The request did not complete within {timeout:g} s (TTS_REQUEST_TIMEOUT_S).")
