"""Usage per tenant and model: Prometheus series now, and hourly totals in SQLite for ``GET /v1/usage``.

Every speech request (and every realtime websocket item) ends in one :meth:`Usage.record`: input
characters, seconds of audio *sent*, its status and its time to first audio. Prometheus gets them at
once (labelled by tenant name, never a key). The store keeps one row per hour, tenant, model and
status (so it grows with time and tenants, not with traffic) in ``<data dir>/usage.sqlite3``.

Writes happen off the event loop: :meth:`record` only puts the record on a bounded queue, and one
writer thread commits whatever has queued, a transaction at a time. Shutdown drains the queue, so a
restart loses no completed request; only a crash can lose the last fraction of a second. If the
queue is ever full (the disk stalls), records are counted as dropped in ``tts_usage_records_dropped``
rather than blocking requests.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

logger = logging.getLogger(__name__)

LATENCY = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
HOUR = 3600
QUEUE_SIZE = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_hourly (
    hour INTEGER NOT NULL,            -- unix time of the hour's start (UTC)
    tenant TEXT NOT NULL,
    model TEXT NOT NULL,
    status INTEGER NOT NULL,          -- the HTTP status (a websocket item's as if it were a request)
    requests INTEGER NOT NULL,
    input_characters INTEGER NOT NULL,
    audio_seconds REAL NOT NULL,
    first_audio_seconds_sum REAL NOT NULL,
    first_audio_count INTEGER NOT NULL,
    PRIMARY KEY (hour, tenant, model, status)
)
"""
UPSERT = """
INSERT INTO usage_hourly VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)
ON CONFLICT (hour, tenant, model, status) DO UPDATE SET
    requests = requests + 1,
    input_characters = input_characters + excluded.input_characters,
    audio_seconds = audio_seconds + excluded.audio_seconds,
    first_audio_seconds_sum = first_audio_seconds_sum + excluded.first_audio_seconds_sum,
    first_audio_count = first_audio_count + excluded.first_audio_count
"""


@dataclass(frozen=True)
class Record:
    hour: int
    tenant: str
    model: str
    status: int
    chars: int
    audio_seconds: float
    first_audio_sum: float
    first_audio_count: int


class UsageStore:
    """The SQLite file and its writer thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: queue.Queue[Record | threading.Event | None] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")  # readers (GET /v1/usage) never wait for the writer
        connection.execute(SCHEMA)
        return connection

    def put(self, record: Record) -> bool:
        with self._lock:
            if self._thread is None:  # the file is created with the first record, not at startup
                self._thread = threading.Thread(target=self._write, name="tts-usage-writer", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(record)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def _write(self) -> None:
        connection = self._connect()
        try:
            while True:
                batch = [self._queue.get()]
                while not self._queue.empty() and len(batch) < 1000:
                    batch.append(self._queue.get_nowait())
                records = [r for r in batch if isinstance(r, Record)]
                if records:
                    try:
                        with connection:  # one transaction per batch
                            connection.executemany(UPSERT, [astuple(r) for r in records])
                    except sqlite3.Error:
                        logger.exception("usage: writing %d records to %s failed", len(records), self.path)
                for item in batch:
                    if isinstance(item, threading.Event):  # a reader waits for what was queued before it
                        item.set()
                if None in batch:
                    return
        finally:
            connection.close()

    def close(self) -> None:
        """Write what is queued, then stop (blocking: call it off the event loop)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(30)

    def _sync(self) -> None:
        """Wait (briefly) until every record queued so far is committed."""
        with self._lock:
            running = self._thread is not None
        if running:
            done = threading.Event()
            try:
                self._queue.put(done, timeout=5)
                done.wait(5)
            except queue.Full:
                pass

    def query(self, start: float, end: float) -> list[dict[str, Any]]:
        """Totals per tenant and model over the hours that start in ``[start, end)`` (blocking)."""
        self._sync()
        if not self.path.exists():
            return []
        connection = self._connect()
        try:
            rows = connection.execute(
                "SELECT tenant, model, status, SUM(requests), SUM(input_characters), SUM(audio_seconds), "
                "SUM(first_audio_seconds_sum), SUM(first_audio_count) FROM usage_hourly "
                "WHERE hour >= ? AND hour < ? GROUP BY tenant, model, status ORDER BY tenant, model, status",
                (int(start // HOUR * HOUR), int(end)),
            ).fetchall()
        finally:
            connection.close()
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for tenant, model, status, requests, chars, audio, first_sum, first_count in rows:
            entry = out.setdefault(
                (tenant, model),
                {
                    "tenant": tenant,
                    "model": model,
                    "requests": {},
                    "input_characters": 0,
                    "audio_seconds": 0.0,
                    "_first_sum": 0.0,
                    "_first_count": 0,
                },
            )
            entry["requests"][str(status)] = requests
            entry["input_characters"] += chars
            entry["audio_seconds"] += audio
            entry["_first_sum"] += first_sum
            entry["_first_count"] += first_count
        result = []
        for entry in out.values():
            first_sum, first_count = entry.pop("_first_sum"), entry.pop("_first_count")
            entry["audio_seconds"] = round(entry["audio_seconds"], 3)
            entry["first_audio_seconds_mean"] = round(first_sum / first_count, 4) if first_count else None
            result.append(entry)
        return result


class Usage:
    """What the server calls when a request or item ends: metrics now, the store soon after."""

    def __init__(self, store: UsageStore, registry: CollectorRegistry) -> None:
        self.store = store
        r = registry
        self.requests = Counter(
            "tts_tenant_requests", "Speech requests and websocket items, by tenant, model and status.",
            ["tenant", "model", "status"], registry=r,
        )  # fmt: skip
        self.chars = Counter(
            "tts_tenant_input_characters", "Input characters, by tenant and model.", ["tenant", "model"], registry=r
        )
        self.audio = Counter(
            "tts_tenant_audio_seconds", "Seconds of audio sent, by tenant and model.", ["tenant", "model"], registry=r
        )
        self.first_audio = Histogram(
            "tts_tenant_time_to_first_audio_seconds",
            "Time to first audio, by tenant and model.",
            ["tenant", "model"],
            buckets=LATENCY,
            registry=r,
        )
        self.dropped = Counter("tts_usage_records_dropped", "Usage records the store could not take.", registry=r)

    def record(
        self,
        *,
        tenant: str,
        model: str,
        status: int,
        chars: int,
        audio_seconds: float,
        first_audio_s: float | None,
        at: float | None = None,
    ) -> None:
        self.requests.labels(tenant, model, str(status)).inc()
        self.chars.labels(tenant, model).inc(chars)
        self.audio.labels(tenant, model).inc(audio_seconds)
        if first_audio_s is not None:
            self.first_audio.labels(tenant, model).observe(first_audio_s)
        hour = int((at if at is not None else time.time()) // HOUR * HOUR)
        first = (first_audio_s or 0.0, 1 if first_audio_s is not None else 0)
        if not self.store.put(Record(hour, tenant, model, status, chars, audio_seconds, *first)):
            self.dropped.inc()

    def record_trace(self, trace: Any) -> None:
        """An HTTP speech request ended (server/request_log.py): its trace has what it used."""
        if trace.tenant is None or trace.model is None or trace.chars is None or trace.method == "WEBSOCKET":
            return
        status = int(trace.status or 0)
        self.record(
            tenant=trace.tenant.name,
            model=trace.model,
            status=status,
            chars=trace.chars if status < 400 else 0,  # a refused request's text was not spoken
            audio_seconds=trace.audio_seconds,
            first_audio_s=trace.first_audio_s,
        )
