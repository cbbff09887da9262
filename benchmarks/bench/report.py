"""Outputs of a run: a JSON file (every request and the metadata), CSVs, a terminal table, a Markdown report."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench.meta import describe_hardware

RECORD_FIELDS = (
    "target",
    "mode",
    "level",
    "index",
    "warmup",
    "text_id",
    "chars",
    "start_s",
    "scheduled_s",
    "ttfb_s",
    "ttfa_s",
    "ttlb_s",
    "audio_s",
    "rtf",
    "bytes",
    "audio_bytes",
    "chunks",
    "status",
    "ok",
    "error_type",
    "error",
    "max_stall_s",
    "realtime",
)
SUMMARY_COLUMNS = (
    ("target", "target", None),
    ("level", "level", "{:g}"),
    ("n", "requests", "{:d}"),
    ("err %", "error_rate", "pct"),
    ("429 %", "rate_429", "pct"),
    ("TTFA p50", "ttfa.p50", "{:.3f}"),
    ("TTFA p90", "ttfa.p90", "{:.3f}"),
    ("TTFA p99", "ttfa.p99", "{:.3f}"),
    ("last byte p50", "ttlb.p50", "{:.3f}"),
    ("last byte p90", "ttlb.p90", "{:.3f}"),
    ("RTF p50", "rtf.p50", "{:.3f}"),
    ("RTF p90", "rtf.p90", "{:.3f}"),
    ("audio s/wall s", "audio_per_wall", "{:.2f}"),
    ("RT streams", "realtime_streams", "{:.2f}"),
)


def _get(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _fmt(value: Any, spec: str | None) -> str:
    if value is None:
        return "-"
    if spec == "pct":
        return f"{100 * value:.1f}"
    if spec is None:
        return str(value)
    if spec == "{:d}":
        return str(int(value))
    return spec.format(value)


def summary_rows(levels: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [[_fmt(_get(row, path), spec) for _, path, spec in SUMMARY_COLUMNS] for row in levels]


def terminal_table(levels: Sequence[dict[str, Any]]) -> str:
    header = [name for name, _, _ in SUMMARY_COLUMNS]
    rows = summary_rows(levels)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def write_json(path: Path, run: dict[str, Any]) -> None:
    path.write_text(json.dumps(run, indent=1, default=str) + "\n", encoding="utf-8")


def write_records_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=RECORD_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)


def write_summary_csv(path: Path, levels: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([name for name, _, _ in SUMMARY_COLUMNS] + ["wall s", "requests/s", "realtime share"])
        for row, level in zip(summary_rows(levels), levels):
            writer.writerow(row + [f"{level['wall_s']:.2f}", f"{level['requests_per_s']:.3f}", level["realtime_share"]])


def _server_rows(levels: Sequence[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for level in levels:
        view = level.get("server_view") or {}
        headline = view.get("metrics_headline") or {}
        for model, entry in (view.get("models") or {}).items():
            extra = headline.get(model, {})
            rows.append(
                [
                    level["target"],
                    _fmt(level["level"], "{:g}"),
                    model,
                    _fmt(entry.get("mean_step_batch"), "{:.2f}"),
                    _fmt(entry.get("mean_front_batch") or entry.get("mean_lm_batch"), "{:.2f}"),
                    _fmt(entry.get("mean_decoder_batch"), "{:.2f}"),
                    _fmt(entry.get("max_queued"), "{:d}"),
                    _fmt(extra.get("mean_queue_wait_s"), "{:.3f}"),
                    _fmt(extra.get("server_ttfa_mean_s"), "{:.3f}"),
                    _fmt(entry.get("tokens_per_s") or extra.get("tokens_per_s"), "{:.0f}"),
                    _fmt(entry.get("engine_rtf"), "{:.3f}"),
                ]
            )
    return rows


SERVER_HEADER = (
    "target",
    "level",
    "model",
    "mean step batch",
    "mean front / LM batch",
    "mean decoder batch",
    "max queued",
    "queue wait s",
    "server first audio s",
    "tokens/s",
    "engine RTF",
)


def _server_notes(targets: Sequence[dict[str, Any]]) -> list[str]:
    """How a target that is this server was started and what it reported about itself."""
    notes = []
    for t in targets:
        if t.get("launched_with"):
            notes.append(f"- `{t['name']}` was started by the tool: `tts-server serve {' '.join(t['launched_with'])}`")
        stats = (t.get("server") or {}).get("stats") or {}
        for model, entry in stats.items():
            keys = ("status", "policy", "device")
            seen = ", ".join(f"{k} {entry[k]}" for k in keys if isinstance(entry, dict) and entry.get(k) is not None)
            if seen:
                notes.append(f"- `{t['name']}` serves {model}: {seen}")
    return [*notes, ""] if notes else []


def write_markdown(path: Path, run: dict[str, Any], plots: Sequence[Path]) -> None:
    hw, sw, git, work = run["hardware"], run["software"], run["git"], run["workload"]
    lines = [f"# {run.get('title') or 'TTS benchmark'}", ""]
    lines += [
        f"- Started {run['started']}, finished {run['finished']} ({run['elapsed_s']:.0f} s).",
        f"- Client hardware: {describe_hardware(hw)}; load average (1, 5, 15 min) {hw.get('load_average')} "
        f"before the run, {hw.get('load_average_after')} after.",
        "- Software: " + ", ".join(f"{k} {v}" for k, v in sw.items()) + ".",
        f"- Revision: `{git.get('describe') or git.get('commit')}`.",
        f"- Command: `{run['command']}`",
        f"- Workload: texts `{work['texts']}` ({work['n_texts']} texts, ~{work['mean_words']:.0f} words), "
        f"{work['mode']} loop at {', '.join(f'{x:g}' for x in work['levels'])} "
        f"({'concurrent clients' if work['mode'] == 'closed' else 'requests/s, Poisson'}); per level "
        f"{work['requests'] or 'unbounded'} requests / {work['duration'] or 'unbounded'} s; "
        f"{work['warmup']} warm-up requests per target (excluded); timeout {work['timeout_s']:g} s.",
        "",
        "## Targets",
        "",
    ]
    target_rows = []
    for t in run["targets"]:
        server = t.get("server") or {}
        target_rows.append(
            [
                t["name"],
                t["url"],
                t["api"],
                t["model"],
                t["voice"],
                f"{t['format']}" + (f" {t['encoding']} {t['sample_rate']} Hz" if t["format"] == "raw" else ""),
                t["stream"],
                server.get("kind") or "-",
            ]
        )
    header = ("name", "url", "api", "model", "voice", "output", "stream", "server view")
    lines += [markdown_table(header, target_rows, numeric_from=len(header)), ""]
    lines += _server_notes(run["targets"])
    lines += ["## Client view", ""]
    lines.append(markdown_table([c for c, _, _ in SUMMARY_COLUMNS], summary_rows(run["levels"])))
    sustained = ", ".join(f"{k}: {v if v is not None else 'none'}" for k, v in run["max_sustained"].items())
    lines += [
        "",
        f"Seconds throughout. TTFA: time to the first decodable audio. RTF: time to last byte / audio duration "
        f"(decoded from the response). RT streams: mean requests in flight x share of requests whose first audio "
        f"came within {work['first_audio_bound_s']:g} s and whose playback never stalled. Highest level with "
        f">= 95% real-time requests: {sustained}.",
        "",
    ]
    for plot in plots:
        lines += [f"![{plot.stem}]({plot.name})", ""]
    server_rows = _server_rows(run["levels"])
    if server_rows:
        lines += ["## Server view", "", markdown_table(SERVER_HEADER, server_rows, numeric_from=3), ""]
        lines.append(
            "From the server's counters before and after each level (`/metrics` when present, else `/stats`): "
            "mean batch sizes formed, the deepest queue sampled, and from `/metrics` only the mean queue wait and "
            "the server's own mean time to first audio; tokens/s (Orpheus); engine RTF: synthesis seconds per "
            "audio second as the engine's `/stats` counts them (a pipelined stage may run outside that count)."
        )
        lines.append("")
    errors = [(lv["target"], lv["level"], lv["error_types"]) for lv in run["levels"] if lv["error_types"]]
    if errors:
        lines += ["## Errors", ""]
        lines += [f"- {name} at {level:g}: {types}" for name, level, types in errors]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
