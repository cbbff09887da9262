"""Keep ``?api_key=`` out of uvicorn's logs.

Browsers cannot set headers on a WebSocket, so Together's realtime socket takes its key in the
query string, and uvicorn writes query strings to its logs: every handshake at INFO
(``"WebSocket /v1/audio/speech/websocket?..." [accepted]``), and the raw request line at DEBUG, read
before any application code runs. The route also removes the key from the connection's scope (see
server/routes/realtime.py), which covers the INFO lines; this filter covers every line, whatever the
log level or the path's spelling.
"""

from __future__ import annotations

import logging
import re

#: ``api_key=<value>`` in a query string, up to the next separator.
_QUERY_KEY = re.compile(r"(?i)(\bapi_key=)[^&\s\"']*")
#: The loggers uvicorn (and the websockets protocol it drives) write request lines to.
LOGGERS = ("uvicorn.error", "uvicorn.access")


class QueryKeyRedaction(logging.Filter):
    """Rewrites a record whose message carries ``api_key=...`` to say ``api_key=[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "api_key=" in message.lower():
            record.msg, record.args = _QUERY_KEY.sub(r"\1[redacted]", message), ()
        return True


def install_query_key_redaction() -> None:
    """Attach the filter to uvicorn's loggers (once: loggers are process-wide)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryKeyRedaction) for f in logger.filters):
            logger.addFilter(QueryKeyRedaction())
