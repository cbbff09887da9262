"""The server's own view of a level, when the target is this server: scraped before and after.

Prometheus ``/metrics`` is read when the server has it, else this server's ``/stats`` JSON. The
difference between the two scrapes gives, per model: batch sizes formed (worker steps, the Kokoro
front and decoder batches, the Orpheus LM batch), tokens/s, SNAC windows per codec call, the
engine's synthesis time per audio second; with ``/metrics`` also queue waits (the mean of every
histogram whose name mentions a queue wait) and whatever else it exports. ``/stats`` is also sampled
during the level for the deepest queue seen (it has no queue-wait counter).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any

import httpx

from benchmarks.bench.targets import Target

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of the Prometheus text format: ``{(name, sorted labels): value}``."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        labels = tuple(sorted(_LABEL.findall(match.group(2) or "")))
        samples[(match.group(1), labels)] = value
    return samples


def _model_of(labels: tuple[tuple[str, str], ...]) -> str:
    return dict(labels).get("model", "all")


def metrics_delta(before: dict, after: dict, wall_s: float) -> dict[str, dict[str, Any]]:
    """Per model: each histogram's count and mean over the level, each counter's increase and rate."""
    out: dict[str, dict[str, Any]] = {}
    sums = {(n[: -len("_sum")], lab): v for (n, lab), v in after.items() if n.endswith("_sum")}
    for (family, labels), total in sums.items():
        if any(k == "le" for k, _ in labels):
            continue
        count = after.get((family + "_count", labels), 0.0) - before.get((family + "_count", labels), 0.0)
        dsum = total - before.get((family + "_sum", labels), 0.0)
        if count > 0:
            entry = out.setdefault(_model_of(labels), {}).setdefault(family, {"count": 0.0, "sum": 0.0})
            entry["count"] += count
            entry["sum"] += dsum
            entry["mean"] = entry["sum"] / entry["count"]
    for (name, labels), value in after.items():
        if name.endswith("_total") and not name.endswith("_count"):
            delta = value - before.get((name, labels), 0.0)
            if delta:
                model = out.setdefault(_model_of(labels), {})
                entry = model.setdefault(name, {"increase": 0.0})
                entry["increase"] += delta
                entry["per_s"] = entry["increase"] / wall_s if wall_s > 0 else None
    return out


def headline_from_metrics(delta: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The few numbers shown next to the client's view, picked from the metric families by name."""
    picks = {
        "mean_batch": re.compile(r"batch_size"),
        "mean_queue_wait_s": re.compile(r"queue.*wait|wait.*queue"),
        "server_ttfa_mean_s": re.compile(r"first_audio|ttfa"),
        "tokens_per_s": re.compile(r"tokens"),
    }
    out: dict[str, dict[str, float]] = {}
    for model, families in delta.items():
        for label, pattern in picks.items():
            for family, entry in sorted(families.items()):
                value = entry.get("per_s") if label == "tokens_per_s" else entry.get("mean")
                if pattern.search(family) and value is not None:
                    out.setdefault(model, {})[label] = value
                    break
    return out


def _hist_delta(before: dict, after: dict) -> dict[int, int]:
    keys = set(before) | set(after)
    delta = {int(k): int(after.get(k, 0)) - int(before.get(k, 0)) for k in keys}
    return {k: v for k, v in sorted(delta.items()) if v}


def _mean(hist: dict[int, int]) -> float | None:
    total = sum(hist.values())
    return sum(k * v for k, v in hist.items()) / total if total else None


def stats_delta(before: dict, after: dict, wall_s: float) -> dict[str, dict[str, Any]]:
    """Per model, from two ``/stats`` snapshots of this server."""
    out: dict[str, dict[str, Any]] = {}
    for model, now in after.items():
        if isinstance(now, dict):
            was = before.get(model)
            out[model] = _model_delta(was if isinstance(was, dict) else {}, now, wall_s)
    return out


def _model_delta(was: dict[str, Any], now: dict[str, Any], wall_s: float) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for name, short in (
        ("batch_size_histogram", "step_batch"),
        ("front_batch_histogram", "front_batch"),
        ("decoder_batch_histogram", "decoder_batch"),
        ("lm_batch_size_histogram", "lm_batch"),
    ):
        if name in now:
            hist = _hist_delta(was.get(name) or {}, now[name] or {})
            entry[f"{short}_histogram"] = hist
            entry[f"mean_{short}"] = _mean(hist)

    def grew(key: str) -> float:
        return float(now.get(key) or 0) - float(was.get(key) or 0)

    for key in ("steps", "jobs_completed", "jobs_cancelled", "jobs_failed", "tokens_generated", "codec_calls"):
        if key in now:
            entry[key] = grew(key)
    if "tokens_generated" in now:
        entry["tokens_per_s"] = grew("tokens_generated") / wall_s if wall_s > 0 else None
    if grew("codec_calls") > 0:
        entry["windows_per_codec_call"] = grew("codec_windows") / grew("codec_calls")
    if grew("padded_tokens") > 0:
        entry["token_efficiency"] = grew("real_tokens") / grew("padded_tokens")
    if grew("audio_seconds") > 0:
        entry["audio_seconds"] = grew("audio_seconds")
        entry["engine_rtf"] = grew("synthesis_seconds") / grew("audio_seconds")
    return entry


class ServerView:
    """Detects what the target exposes, then scrapes it around each level."""

    def __init__(self, client: httpx.AsyncClient, target: Target, sample_interval_s: float = 1.0) -> None:
        self.client, self.target, self.interval = client, target, sample_interval_s
        self.kind: str | None = None  # metrics | stats | None
        self.info: dict[str, Any] = {}
        self._peaks: dict[str, dict[str, int]] = {}

    async def _get(self, path: str) -> httpx.Response | None:
        with contextlib.suppress(httpx.HTTPError):
            response = await self.client.get(f"{self.target.base}{path}", headers=self.target.headers(), timeout=10)
            return response if response.status_code == 200 else None
        return None

    async def probe(self) -> dict[str, Any]:
        """Is this server ours (``/stats`` in our shape, ``/metrics``)? Records what it says about itself."""
        stats, metrics = await self._get("/stats"), await self._get("/metrics")
        if metrics is not None and "# TYPE" in metrics.text:
            self.kind = "metrics"
        if stats is not None:
            with contextlib.suppress(ValueError):
                body = stats.json()
                if isinstance(body, dict) and any(isinstance(v, dict) and "status" in v for v in body.values()):
                    self.kind = self.kind or "stats"
                    self.info["stats"] = body
        for path, key in (("/ready", "ready"), ("/v1/models", "models")):
            response = await self._get(path)
            with contextlib.suppress(ValueError, AttributeError):
                self.info[key] = response.json() if response is not None else None
        self.info["kind"] = self.kind
        return self.info

    async def scrape(self) -> dict[str, Any] | None:
        if self.kind is None:
            return None
        snapshot: dict[str, Any] = {"t": time.perf_counter()}
        response = await self._get("/stats")
        with contextlib.suppress(ValueError, AttributeError):
            snapshot["stats"] = response.json() if response is not None else None
        if self.kind == "metrics":
            response = await self._get("/metrics")
            snapshot["metrics"] = parse_prometheus(response.text) if response is not None else {}
        return snapshot

    def diff(self, before: dict | None, after: dict | None) -> dict[str, Any] | None:
        if not before or not after:
            return None
        wall = after["t"] - before["t"]
        out: dict[str, Any] = {"wall_s": wall, "source": self.kind}
        if before.get("stats") and after.get("stats"):
            out["models"] = stats_delta(before["stats"], after["stats"], wall)
            for model, peaks in self._peaks.items():
                out["models"].setdefault(model, {}).update(peaks)
        if self.kind == "metrics":
            delta = metrics_delta(before.get("metrics", {}), after.get("metrics", {}), wall)
            out["metrics"] = delta
            out["metrics_headline"] = headline_from_metrics(delta)
        return out

    @contextlib.asynccontextmanager
    async def sampling(self):
        """While the level runs, poll ``/stats`` for the deepest queue and most active requests seen."""
        self._peaks = {}
        task = asyncio.create_task(self._sample()) if self.kind and self.interval > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _sample(self) -> None:
        while True:
            response = await self._get("/stats")
            with contextlib.suppress(ValueError, AttributeError):
                for model, entry in (response.json() if response is not None else {}).items():
                    peaks = self._peaks.setdefault(model, {"max_queued": 0, "max_active": 0})
                    peaks["max_queued"] = max(peaks["max_queued"], int(entry.get("queued") or 0))
                    peaks["max_active"] = max(peaks["max_active"], int(entry.get("active") or 0))
            await asyncio.sleep(self.interval)
