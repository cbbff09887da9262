"""One worker step of the Kokoro engine: the next chunk of every ready request, in padded batches.

The step takes one phoneme chunk from each request the :class:`BatchWorker` hands it, sorts them
by length and cuts them into buckets of similar length within a budget of padded tokens, so
padding stays small. Each bucket runs the text/prosody front as one batched forward; the decoder
then follows the policy, because the hardware decides what batching buys:

* ``batched`` (CUDA): the decoder runs batched too, cut again by a budget of padded frames, and
  each decoder batch's audio is converted on the device and copied to the host once;
* ``front`` (CPU): the decoder is compute-bound at batch 1 on a CPU (batching it made it slower
  there), so a step prepares the next chunk of every ready request (the batched front) and then
  decodes one of them, the most urgent (``schedule.py``): a new request waits for at most the one
  decode in progress;
* ``serial``: one item at a time through everything, for comparison and as a fallback.

Each chunk loses the boundary silence at its joins with the request's other chunks (``joins.py``);
audio is faded at its edges and, on CUDA, resampled and encoded to the response's PCM on the
device before one device-to-host copy (``engines/pcm_device.py``). On a CPU, soxr and numpy in the
server do the same conversion faster, so the float samples go over as they are.

A failing batched call is retried item by item, and each item's audio is handed over on its own, so a
bad item fails its own request only. A
request whose client left is skipped before each front and each decoder call, so within a step it
costs at most the call already running.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from engines import pcm_device
from engines.base import EncodedPcm, PcmChunk, WordTimings
from engines.errors import InternalError
from engines.job import Job
from engines.kokoro.batched import BatchedKokoro, ForwardItem, Prosody
from engines.kokoro.context import WARM_FRAMES
from engines.kokoro.joins import boundary_frames, trim_joins
from engines.kokoro.requests import KokoroRequest
from engines.kokoro.schedule import prepare_and_decode_one
from engines.kokoro.timestamps import SAMPLE_RATE, SAMPLES_PER_FRAME, word_timings
from engines.kokoro.work import Work, buckets

logger = logging.getLogger(__name__)

EDGE_FADE_SAMPLES = 48  # 2 ms raised-cosine ramps: segment joins start and end at zero, no clicks
MAX_RESAMPLERS = 8


def _ramp(n: int, device: torch.device) -> torch.Tensor:
    """Rising raised-cosine of ``n`` samples (the same values as engines.audio.fade)."""
    return (0.5 - 0.5 * torch.cos(torch.linspace(0.0, torch.pi, n, dtype=torch.float64))).float().to(device)


class KokoroBatcher:
    def __init__(
        self,
        forward: BatchedKokoro,
        device: torch.device,
        *,
        policy: str,
        max_batch_tokens: int,
        max_batch_frames: int,
        device_pcm: bool,
    ) -> None:
        self.forward = forward
        self.device = device
        self.policy = policy
        self.device_pcm = device_pcm
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_frames = max_batch_frames
        self._resamplers: dict[int, pcm_device.Resampler] = {}
        self._fade = _ramp(EDGE_FADE_SAMPLES, device)
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = {
            "front_calls": 0,
            "decoder_calls": 0,
            "items": 0,
            "front_batch_histogram": collections.Counter(),
            "decoder_batch_histogram": collections.Counter(),
            "real_tokens": 0,
            "padded_tokens": 0,
            "real_frames": 0,
            "padded_frames": 0,
            "items_skipped_cancelled": 0,
        }
        self.audio_seconds = 0.0
        self.synthesis_seconds = 0.0

    # -- the worker step ----------------------------------------------------------------------
    @torch.inference_mode()
    def step(self, jobs: Sequence[Job[KokoroRequest]]) -> None:
        started = time.perf_counter()
        work: list[Work] = []
        for job in jobs:
            request = job.state
            if request.prepared is not None:
                continue
            done = request.input_done  # read before the queue: see requests.py
            if request.chunks:
                work.append(Work(job, request.chunks.popleft()))
            elif done:
                job.finish()
        if self.policy == "front":
            prepare_and_decode_one(self, work, jobs)
        else:
            for bucket in buckets(work, self.max_batch_tokens, key=lambda w: w.item.tokens):
                self._run_bucket(bucket)
        for job in jobs:
            if not job.finished and job.state.exhausted():
                job.finish()
        with self._lock:
            self.synthesis_seconds += time.perf_counter() - started

    def _skip_cancelled(self, work: list[Work]) -> list[Work]:
        keep = [w for w in work if not w.job.cancelled]
        if len(keep) < len(work):
            with self._lock:
                self._stats["items_skipped_cancelled"] += len(work) - len(keep)
        return keep

    def _run_bucket(self, bucket: list[Work]) -> None:
        bucket = self._skip_cancelled(bucket)
        if not bucket:
            return
        if self.policy == "serial":
            for entry in bucket:
                self._run_bucket_batched([entry])
            return
        prosody = self._front(bucket)
        self._decode_batched([(w, p) for w, p in zip(bucket, prosody) if p is not None])

    def _run_bucket_batched(self, bucket: list[Work]) -> None:
        bucket = self._skip_cancelled(bucket)
        if not bucket:
            return
        prosody = self._front(bucket)
        self._decode_batched([(w, p) for w, p in zip(bucket, prosody) if p is not None])

    def _decode_batched(self, live: list[tuple[Work, Prosody]]) -> None:
        by_work = {id(w): p for w, p in live}
        for group in buckets([w for w, _ in live], self.max_batch_frames, key=lambda w: by_work[id(w)].frames):
            self._decode(group, [by_work[id(w)] for w in group])

    # -- stages, each with per-item failure isolation -----------------------------------------
    def _front(self, bucket: list[Work]) -> list[Prosody | None]:
        items = [
            ForwardItem(w.item.input_ids, w.item.ref_s, w.request.speed, None, w.item.keep, w.item.warm, WARM_FRAMES)
            for w in bucket
        ]
        try:
            prosody: list[Prosody | None] = list(self.forward.front(items))
        except Exception:
            if len(bucket) == 1:
                self._fail(bucket[0], "front")
                return [None]
            logger.warning("kokoro: batched front failed; retrying its %d items one by one", len(bucket))
            return [self._front([w])[0] for w in bucket]
        longest = max(w.item.tokens for w in bucket)
        self._count(
            "front",
            len(bucket),
            real_tokens=sum(w.item.tokens for w in bucket),
            padded_tokens=longest * len(bucket),
        )
        return prosody

    def _decode(self, group: list[Work], prosody: list[Prosody], audio: list[torch.Tensor] | None = None) -> None:
        """Decode ``group`` (or take its ``audio``, decoded in slices by schedule.py), convert it, emit it."""
        live = {id(w) for w in self._skip_cancelled(group)}
        keep = [i for i, w in enumerate(group) if id(w) in live]
        group, prosody = [group[i] for i in keep], [prosody[i] for i in keep]
        if not group:
            return
        generators = [w.request.generator(w.item, self.device) for w in group]
        try:
            if audio is None:
                audio = self.forward.decode(prosody, generators)
            audio = [trim_joins(w.item, p, a) for w, p, a in zip(group, prosody, audio)]
            encoded = self._convert([w.request for w in group], audio)
        except Exception:
            if len(group) == 1:
                self._fail(group[0], "decoder")
                return
            logger.warning("kokoro: batched decoder failed; retrying its %d items one by one", len(group))
            for entry, item_prosody in zip(group, prosody):
                self._decode([entry], [item_prosody])
            return
        longest = max(p.frames for p in prosody)
        self._count(
            "decoder",
            len(group),
            real_frames=sum(p.frames for p in prosody),
            padded_frames=longest * len(group),
        )
        for entry, item_prosody, data in zip(group, prosody, encoded):
            try:  # one request's timings or queue must not cost the rest of the batch their audio
                self._emit(entry, item_prosody, data)
            except Exception:
                self._fail(entry, "emit")

    def _convert(self, requests: list[KokoroRequest], audio: list[torch.Tensor]) -> list[bytes | np.ndarray]:
        """Fade the edges; then resample and encode on the device (one host copy per rate and encoding),
        or, without device PCM, copy the float samples over once and let the server convert them."""
        if not self.device_pcm:
            faded = [self._smooth_edges(a) for a in audio]
            host = torch.cat(faded).float().cpu().numpy() if faded else np.zeros(0, np.float32)
            return np.split(host, np.cumsum([a.shape[0] for a in faded])[:-1])
        out: list[bytes | None] = [None] * len(audio)
        groups: dict[tuple[int, str], list[int]] = collections.defaultdict(list)
        for index, request in enumerate(requests):
            groups[(request.sample_rate, request.encoding)].append(index)
        for (rate, encoding), indices in groups.items():
            faded = [self._smooth_edges(audio[i]) for i in indices]
            resampler = None if rate == SAMPLE_RATE else self._resampler(rate)
            for index, data in zip(indices, pcm_device.encode_batch(faded, encoding, resampler)):
                out[index] = data
        return out  # type: ignore[return-value]

    def _emit(self, entry: Work, prosody: Prosody, data: bytes | np.ndarray) -> None:
        request, item = entry.request, entry.item
        lead, tail = boundary_frames(item, prosody.durations.tolist())
        if request.word_timestamps and item.spans is not None:
            durations = prosody.durations.tolist()
            warm = sum(durations[: item.warm])  # the earlier text's tokens the spans do not count (context.py)
            start = request.start_seconds - (lead - warm) * SAMPLES_PER_FRAME / SAMPLE_RATE  # audio starts after `lead`
            entry.job.emit(WordTimings(word_timings(item.spans, durations[item.warm :], start)))
        if isinstance(data, np.ndarray):
            entry.job.emit(PcmChunk(data, SAMPLE_RATE, request.native_samples))
        else:
            samples = len(data) // pcm_device.BYTES_PER_SAMPLE[request.encoding]
            entry.job.emit(EncodedPcm(data, request.sample_rate, request.encoding, request.samples_out))
            request.samples_out += samples
        kept = (prosody.frames - lead - tail) * SAMPLES_PER_FRAME
        request.native_samples += kept
        if request.first_audio_at is None:
            request.first_audio_at = time.monotonic()
        with self._lock:
            self.audio_seconds += kept / SAMPLE_RATE

    def _fail(self, entry: Work, stage: str) -> None:
        logger.exception("kokoro: the %s failed for one request", stage)
        entry.job.fail(InternalError("The server failed to synthesize this request."))

    # -- helpers ------------------------------------------------------------------------------
    def _smooth_edges(self, audio: torch.Tensor) -> torch.Tensor:
        n = min(EDGE_FADE_SAMPLES, audio.shape[0] // 2)
        if n == 0:
            return audio
        ramp = self._fade if n == EDGE_FADE_SAMPLES else _ramp(n, audio.device)
        out = audio.clone()
        out[:n] *= ramp.to(out.dtype)
        out[-n:] *= ramp.flip(0).to(out.dtype)
        return out

    def _resampler(self, rate: int) -> pcm_device.Resampler:
        # Clients pick any rate in 8-48 kHz and each filter bank holds device memory: keep a few, recently used.
        resampler = self._resamplers.pop(rate, None) or pcm_device.Resampler(SAMPLE_RATE, rate, self.device)
        self._resamplers[rate] = resampler
        while len(self._resamplers) > MAX_RESAMPLERS:
            del self._resamplers[next(iter(self._resamplers))]
        return resampler

    def _count(self, stage: str, size: int, **amounts: int) -> None:
        with self._lock:
            self._stats[f"{stage}_calls"] += 1
            self._stats[f"{stage}_batch_histogram"][size] += 1
            if stage == "front":
                self._stats["items"] += size
            for key, value in amounts.items():
                self._stats[key] += value

    def stats(self) -> dict[str, Any]:
        with self._lock:
            stats = dict(self._stats)
            for key in ("front_batch_histogram", "decoder_batch_histogram"):
                stats[key] = dict(sorted(self._stats[key].items()))
        stats["policy"] = self.policy
        stats["compiled"] = self.forward.compiled
        stats["decoder_dtype"] = str(self.forward.decoder_dtype).removeprefix("torch.")
        if self.forward.resblock is not None and self.forward.resblock.fallback_reason:
            stats["compile_fallback"] = self.forward.resblock.fallback_reason
        stats["token_efficiency"] = (
            round(stats["real_tokens"] / stats["padded_tokens"], 3) if stats["padded_tokens"] else None
        )
        stats["frame_efficiency"] = (
            round(stats["real_frames"] / stats["padded_frames"], 3) if stats["padded_frames"] else None
        )
        return stats
