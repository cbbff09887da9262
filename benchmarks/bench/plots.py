"""PNG figures (matplotlib, Agg backend): first-audio CDF per target; latency and throughput by level."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _by_target(levels: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for level in levels:
        out.setdefault(level["target"], []).append(level)
    return {name: sorted(rows, key=lambda r: r["level"]) for name, rows in out.items()}


def _x_axis(ax, levels: Sequence[dict[str, Any]]) -> None:
    """Concurrency sweeps double, so a log2 axis spaces them evenly; ticks at the levels run."""
    xs = sorted({r["level"] for r in levels})
    open_loop = bool(levels) and levels[0]["mode"] == "open"
    ax.set_xlabel("arrival rate (requests/s, Poisson)" if open_loop else "concurrent clients")
    if len(xs) > 1 and xs[0] > 0 and xs[-1] / xs[0] >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.minorticks_off()


STYLES = ("-", "--", ":", "-.")


def ttfa_cdf(path: Path, records: Sequence[dict[str, Any]], title: str) -> Path:
    """One colour per target, one line style per level (styles repeat after four levels)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    targets = list(dict.fromkeys(r["target"] for r in records))
    levels = sorted({r["level"] for r in records})
    for t, name in enumerate(targets):
        for n, level in enumerate(levels):
            values = sorted(
                r["ttfa_s"]
                for r in records
                if r["target"] == name and r["level"] == level and r["ok"] and r["ttfa_s"] is not None
            )
            if values:
                ys = [(i + 1) / len(values) for i in range(len(values))]
                label = f"{name} @ {level:g} (n={len(values)})"
                ax.step(values, ys, where="post", color=colors[t % len(colors)], ls=STYLES[n % 4], label=label)
    ax.set_xlabel("time to first audio (s)")
    ax.set_ylabel("share of requests")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    open_loop = bool(records) and records[0]["mode"] == "open"
    ax.set_title(f"{title}: first-audio CDF by {'arrival rate' if open_loop else 'concurrency'}", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_vs_level(path: Path, levels: Sequence[dict[str, Any]], title: str) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    for name, rows in _by_target(levels).items():
        xs = [r["level"] for r in rows]
        for ax, key in zip(axes, ("ttfa", "ttlb")):
            (line,) = ax.plot(xs, [r[key]["p50"] for r in rows], marker="o", label=f"{name} p50")
            ax.plot(xs, [r[key]["p90"] for r in rows], marker=".", ls="--", color=line.get_color(), label=f"{name} p90")
    for ax, what in zip(axes, ("time to first audio (s)", "time to last byte (s)")):
        _x_axis(ax, levels)
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{title}: latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def throughput_vs_level(path: Path, levels: Sequence[dict[str, Any]], title: str) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    for name, rows in _by_target(levels).items():
        xs = [r["level"] for r in rows]
        axes[0].plot(xs, [r["audio_per_wall"] for r in rows], marker="o", label=name)
        axes[1].plot(xs, [r["realtime_streams"] for r in rows], marker="o", label=name)
    axes[0].set_ylabel("audio seconds per wall second")
    axes[1].set_ylabel("real-time streams sustained")
    for ax in axes:
        _x_axis(ax, levels)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{title}: throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(out_dir: Path, run: dict[str, Any]) -> list[Path]:
    title = run.get("title") or "TTS benchmark"
    measured = [r for r in run["records"] if not r["warmup"]]
    return [
        ttfa_cdf(out_dir / "ttfa_cdf.png", measured, title),
        latency_vs_level(out_dir / "latency.png", run["levels"], title),
        throughput_vs_level(out_dir / "throughput.png", run["levels"], title),
    ]
