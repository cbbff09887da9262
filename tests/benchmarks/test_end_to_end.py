"""`tts-server bench` against the real server process (random-weight Kokoro) and a second, fake target."""

from __future__ import annotations

import csv
import json

from benchmarks.bench.cli import main as bench  # what `tts-server bench` runs (its entry point)


def run_bench(tmp_path, *args: str) -> dict:
    out = tmp_path / "out"
    common = ["--requests", "2", "--warmup", "1", "--out", str(out), "--no-progress", "--scrape-interval", "0.2"]
    assert bench([*common, *args]) == 0  # later flags win
    return json.loads((out / "results.json").read_text())


def test_one_target_every_output_file(tmp_path, bench_kokoro_server, tiny_texts, capsys):
    run = run_bench(tmp_path, "--url", bench_kokoro_server, "--voice", "af_heart", "--texts", str(tiny_texts),
                    "--concurrency", "1,2", "--title", "Kokoro e2e")  # fmt: skip
    out = tmp_path / "out"
    for name in ("results.json", "requests.csv", "summary.csv", "report.md", "ttfa_cdf.png", "latency.png",
                 "throughput.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    measured = [r for r in run["records"] if not r["warmup"]]
    assert len(measured) == 4 and len(run["records"]) == 5
    for r in measured:
        assert r["ok"] and r["status"] == 200, r
        assert 0 < r["ttfb_s"] <= r["ttfa_s"] <= r["ttlb_s"] and r["audio_s"] > 0.1
        assert r["rtf"] == r["ttlb_s"] / r["audio_s"] and r["audio_bytes"] == round(r["audio_s"] * 24000) * 2
    assert [lv["level"] for lv in run["levels"]] == [1.0, 2.0]
    assert run["targets"][0]["server"]["kind"] == "metrics"  # this server has /metrics (and /stats)
    # How the server under test was configured, read from it (not only when the bench launched it).
    assert run["targets"][0]["server"]["stats"]["hexgrad/Kokoro-82M"]["settings"]["batch_policy"]
    assert run["targets"][0]["server"]["ready"]["status"] == "ready"
    server_view = run["levels"][1]["server_view"]
    view = server_view["models"]["hexgrad/Kokoro-82M"]
    assert view["jobs_completed"] == 2 and view["mean_step_batch"] >= 1 and "max_queued" in view
    assert server_view["source"] == "metrics"
    assert server_view["metrics_headline"]["hexgrad/Kokoro-82M"]["mean_batch"] >= 1
    assert run["git"]["commit"] and run["hardware"]["cores"] >= 1
    rows = list(csv.DictReader((out / "requests.csv").open()))
    assert len(rows) == 5
    report = (out / "report.md").read_text()
    assert "# Kokoro e2e" in report and "![ttfa_cdf](ttfa_cdf.png)" in report and "## Server view" in report
    assert "TTFA p50" in capsys.readouterr().out


def test_two_targets_side_by_side(tmp_path, bench_kokoro_server, fake_speech_server, tiny_texts):
    tiny_texts.write_text("Hi there.\n[429] Hi.\n", encoding="utf-8")  # the fake refuses the second
    run = run_bench(
        tmp_path,
        "--target", f"url={bench_kokoro_server},name=kokoro-wav,voice=af_heart,format=wav,stream=off",
        "--target", f"url={fake_speech_server}/v1,name=fake-openai,api=openai,format=mp3,stream=bytes,model=tts-1",
        "--target", f"url={fake_speech_server},name=fake-sse,api=openai,stream=sse,model=tts-1",
        "--target", f"url={fake_speech_server},name=fake-ws,stream=ws",
        "--texts", str(tiny_texts), "--concurrency", "1,2",
    )  # fmt: skip
    by_name = {t["name"]: t for t in run["targets"]}
    assert list(by_name) == ["kokoro-wav", "fake-openai", "fake-sse", "fake-ws"]
    assert by_name["kokoro-wav"]["server"]["kind"] == "metrics"
    assert by_name["fake-openai"]["server"]["kind"] == "metrics"
    for level in run["levels"]:
        assert level["requests"] == 2
        if level["target"] == "kokoro-wav":
            assert level["ok"] == 2 and level["audio_s_per_request"] > 0.1  # Kokoro speaks "[429]" too
            continue
        if level["target"] != "fake-ws":  # the websocket fake refuses nothing
            assert level["rate_429"] == 0.5 and level["error_types"] == {"http_429": 1}
        assert level["ttfa"]["p50"] > 0 and level["audio_per_wall"] > 0
    fake = [r for r in run["records"] if r["target"] == "fake-openai" and r["ok"]]
    assert {round(r["audio_s"], 2) for r in fake} == {0.2}  # 2 words -> 0.2 s of MP3, decoded
    ws = [r for r in run["records"] if r["target"] == "fake-ws" and r["ok"]]
    assert ws and all(r["status"] == 101 and r["chunks"] == 4 for r in ws)
    metrics = next(lv for lv in run["levels"] if lv["target"] == "fake-openai")["server_view"]
    assert metrics["metrics_headline"]["tts-1"]["mean_queue_wait_s"] > 0
    assert set(run["max_sustained"]) == set(by_name)


def test_every_format_of_this_server_decodes_to_the_same_audio(tmp_path, bench_kokoro_server, tiny_texts):
    """The same seeded request in every dialect, format, encoding and transport: one duration."""
    tiny_texts.write_text("Hi there.\n", encoding="utf-8")
    url = bench_kokoro_server
    specs = {
        "together-sse": "",
        "together-mp3": "format=mp3,stream=off",
        "together-f32-16k": "encoding=pcm_f32le,rate=16000,stream=off",
        "together-mulaw-8k": "encoding=pcm_mulaw,rate=8000",
        "together-alaw": "encoding=pcm_alaw,stream=off",
        "together-wav": "format=wav,stream=off",
        "openai-sse-pcm": "api=openai,format=pcm,stream=sse",
        "openai-sse-mp3": "api=openai,format=mp3,stream=sse",
        "realtime-ws": "stream=ws",
        **{f"openai-{f}": f"api=openai,format={f},stream=bytes" for f in ("mp3", "opus", "aac", "flac", "wav", "pcm")},
    }
    targets = [a for name, spec in specs.items() for a in ("--target", f"url={url},name={name},{spec}".rstrip(","))]
    run = run_bench(tmp_path, *targets, "--voice", "af_heart", "--texts", str(tiny_texts), "--extra", '{"seed": 7}',
                    "--concurrency", "1", "--requests", "1", "--warmup", "0", "--no-plots")  # fmt: skip
    durations = {r["target"]: r["audio_s"] for r in run["records"]}
    assert all(r["ok"] for r in run["records"]), [r["error"] for r in run["records"] if not r["ok"]]
    exact = durations["together-sse"]
    for name, seconds in durations.items():
        padded = any(codec in name for codec in ("mp3", "aac"))  # encoder delay and frame padding
        assert exact <= seconds <= exact + 0.1 if padded else seconds == exact, (name, seconds, exact)


def test_open_loop_poisson_and_duration_bounds(tmp_path, fake_speech_server, tiny_texts):
    """Arrivals follow the seeded Poisson process; a duration bounds a level without a count."""
    from benchmarks.bench.stats import poisson_arrivals

    run = run_bench(tmp_path, "--target", f"url={fake_speech_server},name=fake", "--texts", str(tiny_texts),
                    "--rate", "20,40", "--duration", "0.5", "--seed", "3", "--requests", "1000")  # fmt: skip
    for level in run["levels"]:
        planned = poisson_arrivals(level["level"], count=1000, duration=0.5, seed=3)
        records = [r for r in run["records"] if r["level"] == level["level"] and not r["warmup"]]
        assert level["requests"] == len(planned) == len(records) and level["mode"] == "open"
        assert sorted(r["scheduled_s"] for r in records) == planned
        # Sent when they arrived, never early; the lag is the event loop's (the fake shares this process).
        lags = sorted(r["start_s"] - r["scheduled_s"] for r in records)
        assert lags[0] > -1e-3 and lags[len(lags) // 2] < 0.1 and lags[-1] < 2.0, lags
    closed = run_bench(tmp_path, "--target", f"url={fake_speech_server},name=fake", "--texts", str(tiny_texts),
                       "--concurrency", "2", "--duration", "0.3", "--requests", "1000")  # fmt: skip
    level = closed["levels"][0]
    assert level["requests"] >= 2 and level["wall_s"] < 0.3 + 5  # no new request after 0.3 s
