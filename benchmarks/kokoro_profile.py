"""Where a Kokoro request's CPU time goes, stage by stage, next to the bare library on the same text.

For each text (the bench tool's built-in ``medium`` set by default) this times, in one process,
one thread count, on the same weights:

* ``kpipeline``: ``kokoro.KPipeline`` on the whole text (G2P + ``KModel`` forward), its decoder
  timed apart through a forward hook;
* the server's path: segmenting with the server's defaults, G2P per segment, the batched front at
  B=1 per chunk (with the text around it as context, as the engine feeds it), the decoder per
  chunk, the joins and edge fades, and the PCM conversion to s16;
* contention: the decoder alone vs with the G2P pool busy on another thread;
* the same texts through the engine in-process (``through_the_engine``: G2P threads, the worker and
  its decoder slices, eager as above): what the serving machinery adds to the stages' sum;
* the text front with dynamic int8 ``Linear`` layers (ALBERT, the encoders, the duration
  projection; ``torch.ao`` quantizes no LSTM kokoro can run): its time and how many duration
  frames move against fp32 (what an int8 front could save, and what it would change);
* the audio each path produced (the server trims the boundary silence at its joins, see
  ``engines/kokoro/joins.py``).

Figures only, nothing asserted::

    python -m benchmarks.kokoro_profile --weights ~/.cache/tts-realweights/kokoro-82m --threads 2
    # the decoder as the CPU default runs it where the CPU has AMX (TTS_KOKORO_DTYPE=auto):
    python -m benchmarks.kokoro_profile --weights ~/.cache/tts-realweights/kokoro-82m --decoder-dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import torch

from benchmarks.bench import meta
from benchmarks.bench.texts import MEDIUM
from engines.kokoro.batched import BatchedKokoro, ForwardItem
from engines.kokoro.context import WARM_FRAMES, with_context
from engines.kokoro.g2p import Phonemizer, spacy_model_alias
from engines.kokoro.joins import boundary_frames
from engines.kokoro.loader import load_kmodel
from engines.kokoro.requests import KokoroItem
from engines.text import segment_text
from server.audio.pcm import encode_pcm

SAMPLE_RATE = 24000
FRAME = 600
MODEL = "hexgrad/Kokoro-82M"


class Clock:
    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.totals[name] = self.totals.get(name, 0.0) + seconds

    def time(self, name: str, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.add(name, time.perf_counter() - start)
        return out


def library(model, pipeline, voice, text: str, clock: Clock) -> float:
    """KPipeline on the whole text; returns audio seconds."""
    state = {}
    hooks = [
        model.decoder.register_forward_pre_hook(lambda *_: state.__setitem__("t", time.perf_counter())),
        model.decoder.register_forward_hook(
            lambda *_: clock.add("kpipeline decoder", time.perf_counter() - state["t"])
        ),
    ]
    try:
        torch.manual_seed(0)
        start = time.perf_counter()
        audio = [r.audio for r in pipeline(text, voice=voice)]
        clock.add("kpipeline total", time.perf_counter() - start)
    finally:
        for hook in hooks:
            hook.remove()
    return sum(a.shape[0] for a in audio) / SAMPLE_RATE


def server_path(model, batched: BatchedKokoro, phonemizer: Phonemizer, pack, text: str, args, clock: Clock) -> float:
    """The server's stages for one request, serially (no HTTP, no worker thread); returns audio seconds."""
    segments = clock.time(
        "segmenting", segment_text, text, first_chars=args.first_chars, max_chars=args.max_chars, min_chars=100
    )
    samples = 0
    chunks = [c.phonemes for s in segments for c in clock.time("g2p", phonemizer.chunks, s, "a")]
    for index, chunk in enumerate(chunks):
        # As the engine feeds it (engines/kokoro/context.py): the earlier chunks and the next as context.
        after = chunks[index + 1] if index + 1 < len(chunks) else None
        context = with_context(chunk, chunks[:index], after, model.vocab, model.context_length)
        ids = torch.tensor(context.input_ids)
        row = context.phonemes if context.left or context.right else len(chunk)
        item = KokoroItem(index, ids, pack[min(row, len(pack)) - 1], None, last=index == len(chunks) - 1)
        item.keep, item.warm, item.left_context = context.keep, context.warm, context.left
        forward_item = ForwardItem(ids, item.ref_s, 1.0, None, context.keep, context.warm, WARM_FRAMES)
        prosody = clock.time("front (B=1)", batched.front, [forward_item])
        generator = torch.Generator().manual_seed(index)
        audio = clock.time("decoder", batched.decode, prosody, [generator])[0]
        start = time.perf_counter()
        lead, tail = boundary_frames(item, prosody[0].durations.tolist())
        audio = audio[lead * FRAME : audio.shape[0] - tail * FRAME].numpy()
        clock.add("joins", time.perf_counter() - start)
        samples += len(clock.time("pcm s16", encode_pcm, audio, "pcm_s16le")) // 2
    return samples / SAMPLE_RATE


def contention(batched: BatchedKokoro, phonemizer: Phonemizer, model, pack, text: str) -> dict[str, float]:
    """Decoder time for one chunk alone and while another thread runs G2P without pause."""
    chunk = phonemizer.chunks(text, "a")[0]
    ids = torch.tensor([0, *(model.vocab[c] for c in chunk.phonemes if c in model.vocab), 0])
    prosody = batched.front([ForwardItem(ids, pack[len(chunk.phonemes) - 1], 1.0, None)])

    def decode() -> float:
        start = time.perf_counter()
        batched.decode(prosody, [torch.Generator().manual_seed(0)])
        return time.perf_counter() - start

    alone = min(decode() for _ in range(2))
    stop = threading.Event()
    other = Phonemizer(MODEL)

    def busy() -> None:
        while not stop.is_set():
            other.chunks(text, "a")

    thread = threading.Thread(target=busy, daemon=True)
    thread.start()
    time.sleep(0.5)
    loaded = min(decode() for _ in range(2))
    stop.set()
    thread.join()
    return {"decoder alone s": round(alone, 3), "decoder with G2P busy s": round(loaded, 3)}


def int8_front(model, batched: BatchedKokoro, phonemizer: Phonemizer, pack, texts: list[str]) -> dict[str, float]:
    """The front with dynamic int8 Linear layers against fp32: seconds for ``texts`` and duration frames moved."""
    import copy

    quantized = copy.deepcopy(model)
    for name in ("bert", "bert_encoder", "text_encoder"):
        module = getattr(quantized, name)
        setattr(quantized, name, torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8))
    predictor = quantized.predictor
    predictor.duration_proj = torch.ao.quantization.quantize_dynamic(
        predictor.duration_proj, {torch.nn.Linear}, dtype=torch.qint8
    )
    int8 = BatchedKokoro(quantized)
    items = []
    for text in texts:
        phonemes = phonemizer.chunks(text, "a")[0].phonemes
        ids = torch.tensor([0, *(model.vocab[c] for c in phonemes if c in model.vocab), 0])
        items.append(ForwardItem(ids, pack[len(phonemes) - 1], 1.0, None))
    times: dict[str, float] = {}
    for name, forward in (("fp32", batched), ("int8", int8)):
        forward.front(items[:1])
        start = time.perf_counter()
        outputs = [forward.front([item])[0] for item in items]
        times[name] = time.perf_counter() - start
        if name == "fp32":
            reference = outputs
    moved = sum(int((a.durations - b.durations).abs().sum()) for a, b in zip(outputs, reference))
    return {
        "front fp32 s": round(times["fp32"], 3),
        "front int8 s": round(times["int8"], 3),
        "duration frames moved": moved,
        "frames": sum(p.frames for p in reference),
    }


def through_the_engine(args, texts: list[str]) -> dict[str, float]:
    """The same texts through ``KokoroEngine`` in-process (G2P threads, the worker, decoder slices), eager:
    its wall time against the stages' sum above is what the serving machinery costs."""
    import asyncio

    from benchmarks.kokoro_bench import one_request
    from engines.kokoro.engine import KokoroEngine
    from server.settings import Settings

    async def run() -> dict[str, float]:
        settings = Settings(
            kokoro_source=str(args.weights), device="cpu", kokoro_compile="off", kokoro_dtype=args.decoder_dtype
        )
        engine = KokoroEngine(MODEL, settings.kokoro)
        await engine.load()
        await engine.warmup()
        try:
            await one_request(engine, texts[0], args.voice, seed=0)  # the first request after load runs slower
            start = time.perf_counter()
            audio = [(await one_request(engine, text, args.voice, seed=0))[2].size for text in texts]
            return {"wall_s": round(time.perf_counter() - start, 3), "audio_s": round(sum(audio) / SAMPLE_RATE, 3)}
        finally:
            await engine.close()

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--voice", default="jf_alpha")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--first-chars", type=int, default=120)
    parser.add_argument("--max-chars", type=int, default=400)
    parser.add_argument("--texts", type=int, default=len(MEDIUM), help="how many of the medium texts")
    parser.add_argument("--decoder-dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from kokoro import KPipeline

    model = load_kmodel(args.weights, "cpu")
    batched = BatchedKokoro(model, decoder_dtype=getattr(torch, args.decoder_dtype))
    phonemizer = Phonemizer(MODEL)
    with spacy_model_alias():
        pipeline = KPipeline(lang_code="a", repo_id=MODEL, model=model)
    pack = torch.load(args.weights / "voices" / f"{args.voice}.pt", weights_only=True)
    phonemizer.chunks("Warm up.", "a")
    with torch.inference_mode():
        library(model, pipeline, pack, "Warm up the model.", Clock())
        lib_clock, ours_clock = Clock(), Clock()
        lib_audio = ours_audio = 0.0
        for text in MEDIUM[: args.texts]:
            lib_audio += library(model, pipeline, pack, text, lib_clock)
            ours_audio += server_path(model, batched, phonemizer, pack, text, args, ours_clock)
        busy = contention(batched, phonemizer, model, pack, MEDIUM[0])
        quantized = int8_front(model, BatchedKokoro(model), phonemizer, pack, MEDIUM[: args.texts])
    engine = through_the_engine(args, MEDIUM[: args.texts])
    lib = lib_clock.totals
    ours = ours_clock.totals
    ours_total = sum(ours.values())
    report = {
        "command": "python -m benchmarks.kokoro_profile " + " ".join(sys.argv[1:]),
        "git": meta.git_revision(),
        "hardware": meta.hardware(),
        "decoder_dtype": args.decoder_dtype,
        "threads": args.threads,
        "texts": args.texts,
        "kpipeline": {
            "wall_s": round(lib["kpipeline total"], 3),
            "decoder_s": round(lib["kpipeline decoder"], 3),
            "g2p_and_front_s": round(lib["kpipeline total"] - lib["kpipeline decoder"], 3),
            "audio_s": round(lib_audio, 3),
        },
        "server_path": {
            **{f"{k}_s": round(v, 3) for k, v in ours.items()},
            "total_s": round(ours_total, 3),
            "audio_s": round(ours_audio, 3),
            "shares": {k: round(v / ours_total, 3) for k, v in ours.items()},
        },
        "contention": busy,
        "int8_front": quantized,
        "through_the_engine": engine,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
