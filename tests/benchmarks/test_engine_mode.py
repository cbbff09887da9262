"""Engine mode (no HTTP): Kokoro's batched forward by batch size; Orpheus sessions in-process."""

from __future__ import annotations

import json

from benchmarks.bench.engine_mode import main


def test_kokoro_kernels_by_batch_size(tmp_path, kokoro_dir, tiny_texts):
    tiny_texts.write_text("Hi.\nYes.\n", encoding="utf-8")
    out = tmp_path / "k"
    argv = ["--kokoro-source", str(kokoro_dir), "--texts", str(tiny_texts), "--batches", "1,2", "--repeats", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    result = json.loads((out / "engine.json").read_text())
    assert [r["batch"] for r in result["rows"]] == [1, 2] and result["what"] == "kernels"
    one, two = result["rows"]
    assert two["tokens"] > one["tokens"] and two["audio_s"] > one["audio_s"] > 0
    assert all(r["front_ms"] > 0 and r["decode_batched_ms"] > 0 and r["decode_serial_ms"] > 0 for r in result["rows"])
    assert "| 2 |" in (out / "engine.md").read_text()


def test_orpheus_sessions_with_engine_counters(tmp_path, tiny_texts):
    out = tmp_path / "o"
    argv = ["--model", "orpheus", "--orpheus-tiny", "--texts", str(tiny_texts), "--batches", "1,3", "--repeats", "1"]
    assert main([*argv, "--extra", '{"max_tokens": 28}', "--out", str(out)]) == 0
    rows = json.loads((out / "engine.json").read_text())["rows"]
    assert [r["sessions"] for r in rows] == [1, 3]
    for r in rows:
        assert 0 < r["ttfa_p50_s"] <= r["total_p50_s"] and r["audio_s"] > 0
        assert r["engine"]["tokens_generated"] > 0 and r["engine"]["mean_lm_batch"] >= 1
