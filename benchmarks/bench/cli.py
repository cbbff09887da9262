"""``tts-server bench`` (also ``python -m benchmarks``): latency and throughput of speech endpoints.

Examples::

    # this server (started for the run), streaming, concurrency 1-8
    tts-server bench --serve "--kokoro-source DIR --device cpu" --voice af_heart --concurrency 1,2,4,8

    # two targets side by side: a running server and Together's hosted API (key from TOGETHER_API_KEY)
    tts-server bench --target http://127.0.0.1:8000 \\
        --target url=https://api.together.xyz,key_env=TOGETHER_API_KEY,name=together \\
        --texts medium --concurrency 1,4 --requests 20

    # an OpenAI-compatible server, byte streaming mp3; open-loop Poisson arrivals for 60 s per rate
    tts-server bench --api openai --url http://host:8880 --model tts-1 --voice alloy --format mp3 \\
        --stream bytes --rate 0.5,1,2 --duration 60

    # engine mode (no HTTP): time the Kokoro forward by batch size
    tts-server bench engine --kokoro-source DIR --batches 1,2,4,8

    # the table, plots and report again from a run's results.json
    tts-server bench report bench-results/20260101-120000/results.json

A target is ``url=...,model=...,voice=...,api=together|openai,format=...,encoding=...,rate=...,
stream=sse|bytes|off|ws,key_env=VAR,name=...`` (unset fields take the global options' values), or
a bare URL; ``--targets-file`` reads a JSON list of such objects (which may carry ``key``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import shlex
import sys
from pathlib import Path

from benchmarks.bench.targets import DEFAULT_KEY_ENV, STREAM_MODES, Target, load_targets_file, parse_target
from benchmarks.bench.texts import load_texts


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def build_parser(prog: str = "tts-server bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("targets (defaults for every --target)")
    g.add_argument("--target", action="append", default=[], help="a target spec (repeat for a side-by-side run)")
    g.add_argument("--targets-file", help="JSON list of target objects")
    g.add_argument("--url", default="http://127.0.0.1:8000", help="base URL (with or without /v1)")
    g.add_argument("--serve", metavar="FLAGS", help='start `tts-server serve FLAGS` and benchmark it (URL "serve")')
    g.add_argument("--api", choices=("together", "openai"), default="together", help="request dialect")
    g.add_argument("--model", default="hexgrad/Kokoro-82M")
    g.add_argument("--voice", default="af_heart")
    g.add_argument("--format", help="together: raw|wav|mp3 (default raw); openai: pcm|mp3|opus|aac|flac|wav")
    g.add_argument("--encoding", default="pcm_s16le", help="raw PCM encoding (Together)")
    g.add_argument("--sample-rate", type=int, default=24000, help="output rate asked for (Together)")
    g.add_argument("--stream", choices=STREAM_MODES, help="sse (default), bytes, off, ws (Together realtime)")
    g.add_argument("--key-env", default=DEFAULT_KEY_ENV, help="environment variable holding the bearer key")
    g.add_argument("--extra", type=json.loads, default={}, help="JSON merged into each body, e.g. '{\"seed\": 1}'")
    w = p.add_argument_group("workload")
    w.add_argument("--texts", default="short", help="short | medium | long | mixed | a file (one text per line)")
    w.add_argument("--concurrency", type=_floats, help="closed loop: concurrent clients per level (default 1,2,4)")
    w.add_argument("--rate", type=_floats, help="open loop: Poisson arrival rates (requests/s) per level")
    w.add_argument("--requests", type=int, help="requests per level (default 16 unless --duration)")
    w.add_argument("--duration", type=float, help="seconds per level (no new requests after it)")
    w.add_argument("--warmup", type=int, default=2, help="warm-up requests per target, excluded (default 2)")
    w.add_argument("--timeout", type=float, default=120.0, help="per-request limit in seconds")
    w.add_argument("--first-audio-bound", type=float, default=1.0, help="real time needs first audio within (s)")
    w.add_argument("--seed", type=int, default=0, help="seed of the Poisson arrivals")
    w.add_argument("--max-in-flight", type=int, default=256, help="open loop: most requests open at once")
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, help="output folder (default bench-results/<time>)")
    o.add_argument("--title", default="TTS benchmark")
    o.add_argument("--no-plots", action="store_true")
    o.add_argument("--no-progress", action="store_true")
    o.add_argument("--scrape-interval", type=float, default=1.0, help="s between /stats samples (0: off)")
    return p


def targets_from_args(args: argparse.Namespace, serve_url: str | None = None) -> list[Target]:
    stream = args.stream or "sse"
    fmt = args.format or ("raw" if args.api == "together" else ("pcm" if stream in ("sse", "bytes") else "mp3"))
    url = serve_url if serve_url and args.url in ("serve", "http://127.0.0.1:8000") else args.url
    defaults = Target(
        url=url,
        model=args.model,
        voice=args.voice,
        api=args.api,
        format=fmt,
        encoding=args.encoding,
        sample_rate=args.sample_rate,
        stream=stream,
        key_env=args.key_env,
        extra=args.extra,
    )
    targets = [parse_target(spec, defaults) for spec in args.target]
    if args.targets_file:
        targets += load_targets_file(args.targets_file, defaults)
    targets = targets or [defaults]
    if serve_url:  # the server started for this run: URL "serve", and a name without its random port
        from dataclasses import replace

        named = []
        for t in targets:
            automatic = t.name == Target(t.url, model=t.model).name
            t = replace(t, url=serve_url) if t.url == "serve" else t
            if t.url == serve_url and automatic:
                t = replace(t, name=f"tts-server {t.model.rsplit('/', 1)[-1]}")
            named.append(t)
        targets = named
    return targets


def config_from_args(args: argparse.Namespace, targets: list[Target], argv: list[str]):
    from benchmarks.bench.run import RunConfig

    if args.concurrency and args.rate:
        raise SystemExit("tts-server bench: give --concurrency (closed loop) or --rate (open loop), not both")
    mode = "open" if args.rate else "closed"
    levels = args.rate or args.concurrency or [1.0, 2.0, 4.0]
    if mode == "closed" and any(level < 1 or level != int(level) for level in levels):
        raise SystemExit("tts-server bench: --concurrency takes whole numbers >= 1")
    requests = args.requests if args.requests is not None else (None if args.duration else 16)
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise SystemExit(f"tts-server bench: target names must differ ({names}); add name=... to each --target")
    return RunConfig(
        targets=targets,
        texts=load_texts(args.texts),
        mode=mode,
        levels=levels,
        requests=requests,
        duration=args.duration,
        warmup=args.warmup,
        timeout_s=args.timeout,
        first_audio_bound_s=args.first_audio_bound,
        seed=args.seed,
        max_in_flight=args.max_in_flight,
        progress=not args.no_progress,
        scrape_interval_s=args.scrape_interval,
        title=args.title,
        command="tts-server bench " + shlex.join(argv),
    )


def run_http(argv: list[str]) -> int:
    from benchmarks.bench.run import print_summary, run_benchmark, write_outputs

    args = build_parser().parse_args(argv)
    out = args.out or Path("bench-results") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")

    def go(serve_url: str | None, launches: dict[str, list[str]]) -> int:
        try:
            targets = targets_from_args(args, serve_url)
        except ValueError as exc:
            raise SystemExit(f"tts-server bench: {exc}") from exc
        config = config_from_args(args, targets, argv)
        config.launches = launches
        run = asyncio.run(run_benchmark(config))
        print_summary(run)
        files = write_outputs(run, out, plots=not args.no_plots)
        print(f"\nwrote {', '.join(str(f) for f in files)}")
        return 0

    if not args.serve:
        return go(None, {})
    from server.launcher import launch_server

    flags = shlex.split(args.serve)
    with launch_server(*flags, timeout_s=900) as url:
        return go(url, {url: flags})


def rerender(argv: list[str]) -> int:
    """``tts-server bench report RESULTS.json [--out DIR]``: the table, plots and report again, from a run's JSON."""
    from benchmarks.bench.run import print_summary, write_outputs

    p = argparse.ArgumentParser(prog="tts-server bench report", description=rerender.__doc__)
    p.add_argument("results", type=Path)
    p.add_argument("--out", type=Path, help="default: the JSON's folder")
    args = p.parse_args(argv)
    run = json.loads(args.results.read_text(encoding="utf-8"))
    print_summary(run)
    files = write_outputs(run, args.out or args.results.parent)
    print(f"\nwrote {', '.join(str(f) for f in files)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        return rerender(argv[1:])
    if argv[:1] == ["engine"]:
        from benchmarks.bench.engine_mode import main as engine_main

        return engine_main(argv[1:])
    return run_http(argv)
