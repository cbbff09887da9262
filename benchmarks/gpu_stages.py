"""The stages of a GPU run, in order of importance, each under its own budget (gpu.sh run / smoke).

A lent GPU machine comes in short windows, so the run is planned to return figures even when cut
off: stages run most important first (the ``gpu`` tests file by file, Kokoro batched vs serial, the
Orpheus 3B transformers backend with CUDA graphs, then the rest); each has a budget in seconds and
the whole run a deadline, a stage past its budget is killed with its process group, and
``gpu-run.json`` in the output folder is rewritten as soon as each stage ends. Benchmarks write
their own JSON next to it. ``--mode smoke`` runs the same stages on the CPU with tiny sizes, so
the script is exercised in CI and cannot rot.

    python -m benchmarks.gpu_stages --mode run --out DIR      # on the GPU machine (gpu.sh run)
    python -m benchmarks.gpu_stages --mode smoke --out DIR    # on a CPU (gpu.sh smoke)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
# Worst case: the budgets add up to more, so the last stages shrink or skip (most important first).
DEADLINE_S = {"run": 460.0, "smoke": 120.0}  # gpu.sh run passes what is left of its 470 s


@dataclass
class Stage:
    name: str
    budget_s: dict[str, float]  # per mode
    argv: dict[str, list[str]]  # per mode; "{out}" is the output folder
    result: str | None = None  # the JSON file the command writes, relative to the output folder
    junit: bool = False  # a pytest stage: its result is read from a JUnit XML report
    extra: dict[str, str] = field(default_factory=dict)


def gpu_test_files() -> list[str]:
    """Every test module with a ``gpu`` mark, found afresh (a new one is run without editing this)."""
    files = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        if "mark.gpu" in text:
            files.append(str(path.relative_to(REPO)))
    return files


# Seconds for the heavier test files; any other file gets DEFAULT_TEST_BUDGET_S.
# Both compile with Inductor on CUDA (Kokoro's forward, SNAC's decoder): tens of seconds each.
TEST_BUDGET_S = {"tests/engines/kokoro/test_cuda.py": 90.0, "tests/engines/orpheus/test_cuda.py": 110.0}
DEFAULT_TEST_BUDGET_S = 20.0
SMOKE_TESTS_BUDGET_S = 40.0  # all test files in one process on a CPU, where they skip


def stages() -> list[Stage]:
    out: list[Stage] = []
    for path in gpu_test_files():
        # By file: a module that fails to import there costs that file alone, not the whole run.
        argv = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", path, "--junitxml={junit}"]
        budget = TEST_BUDGET_S.get(path, DEFAULT_TEST_BUDGET_S)
        name = "tests:" + path.removeprefix("tests/").removesuffix(".py")
        out.append(Stage(name, {"run": budget, "smoke": 30.0}, {"run": argv, "smoke": argv}, junit=True))
    kokoro = [PY, "-m", "benchmarks.kokoro_bench"]
    out.append(
        Stage(
            "kokoro",
            {"run": 70.0, "smoke": 35.0},
            {
                "run": [*kokoro, "--device", "cuda", "--concurrency", "1,4,16,64", "--requests", "2"]
                + ["--policies", "serial,batched", "--out", "{out}/kokoro.json"],
                "smoke": [*kokoro, "--device", "cpu", "--concurrency", "1", "--requests", "1", "--text", "Hi there."]
                + ["--policies", "serial,batched", "--out", "{out}/kokoro.json"],
            },
            result="kokoro.json",
        )
    )
    orpheus = [PY, "-m", "benchmarks.orpheus_bench", "--backends", "transformers", "--cuda-graphs"]
    out.append(
        Stage(
            "orpheus",
            {"run": 110.0, "smoke": 30.0},
            {
                "run": [*orpheus, "--device", "cuda", "--real-arch", "--streams", "1,8,32,64", "--tokens", "350"]
                + ["--max-model-len", "1024", "--out", "{out}/orpheus.json"],
                "smoke": [*orpheus, "--device", "cpu", "--streams", "1,2", "--tokens", "28"]
                + ["--max-model-len", "256", "--out", "{out}/orpheus.json"],
            },
            result="orpheus.json",
        )
    )
    out.append(
        Stage(
            "kokoro-compile",
            {"run": 40.0, "smoke": 25.0},
            {
                "run": [*kokoro, "--device", "cuda", "--concurrency", "1,16", "--requests", "2"]
                + ["--policies", "batched+compile", "--out", "{out}/kokoro-compile.json"],
                # Inductor takes minutes on a CPU: the smoke run drives the same stage without it.
                "smoke": [*kokoro, "--device", "cpu", "--concurrency", "1", "--requests", "1", "--text", "Hi."]
                + ["--policies", "batched", "--out", "{out}/kokoro-compile.json"],
            },
            result="kokoro-compile.json",
        )
    )
    pcm = [PY, "-m", "benchmarks.pcm_device_bench"]
    out.append(
        Stage(
            "pcm",
            {"run": 20.0, "smoke": 15.0},
            {
                "run": [*pcm, "--device", "cuda", "--batches", "1,8,32", "--out", "{out}/pcm.json"],
                "smoke": [*pcm, "--device", "cpu", "--batches", "1,2", "--rates", "16000", "--seconds", "1"]
                + ["--repeats", "1", "--out", "{out}/pcm.json"],
            },
            result="pcm.json",
        )
    )
    return out


def junit_summary(path: Path, module: str | None = None) -> dict:
    """Counts and failures from a JUnit report; ``module`` (tests.engines.x) keeps that file's cases only."""
    if not path.exists():
        return {"error": "no report (the run died before pytest wrote it)"}
    summary = {"tests": 0, "passed": 0, "failures": 0, "errors": 0, "skipped": 0, "problems": []}
    for case in ET.parse(path).getroot().iter("testcase"):
        classname = case.get("classname", "")
        if module is not None and classname != module and not classname.startswith(module + "."):
            continue
        summary["tests"] += 1
        outcome = "passed"
        for kind, key in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            node = case.find(kind)
            if node is not None:
                outcome = key
                if kind != "skipped":
                    summary["problems"].append({"test": case.get("name"), kind: (node.get("message") or "")[:500]})
        summary[outcome] += 1
    return summary


def module_of(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def run_tests_together(tests: list[Stage], out: Path, budget: float, log) -> list[dict]:
    """Smoke mode: every test file in one pytest process (imports paid once), one record per file."""
    files = [s.argv["smoke"][s.argv["smoke"].index("gpu") + 1] for s in tests]
    merged = Stage("tests", {"smoke": budget}, {"smoke": [*tests[0].argv["smoke"][:-2], *files, "--junitxml={junit}"]})
    junit = out / ".tests.xml"
    record = run_stage(merged, "smoke", out, budget, log, keep_junit=True)
    records = []
    for stage, path in zip(tests, files):
        result = junit_summary(junit, module_of(path))
        ok = not record["timed_out"] and record["rc"] in (0, 1) and not result.get("error")
        ok = ok and result["failures"] == result["errors"] == 0 and result["tests"] > 0
        records.append({**record, "name": stage.name, "shared_process": True, "result": result, "ok": ok})
    junit.unlink(missing_ok=True)
    return records


def run_stage(stage: Stage, mode: str, out: Path, budget: float, log, keep_junit: bool = False) -> dict:
    junit = out / f".{stage.name.replace(':', '-').replace('/', '-')}.xml"
    argv = [a.format(out=out, junit=junit) for a in stage.argv[mode]]
    record: dict = {"name": stage.name, "budget_s": round(budget, 1), "argv": argv[1:]}
    log.write(f"\n===== {stage.name} (budget {budget:.0f} s): {' '.join(argv[1:])}\n")
    log.flush()
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        record["rc"] = process.wait(timeout=budget)
        record["timed_out"] = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)  # its process group: the benchmark and whatever it started
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        record["rc"], record["timed_out"] = process.returncode, True
    record["seconds"] = round(time.monotonic() - started, 1)
    if keep_junit:
        return record
    if stage.junit:
        record["result"] = junit_summary(junit)
        junit.unlink(missing_ok=True)
    elif stage.result and (out / stage.result).exists():
        try:
            record["result"] = json.loads((out / stage.result).read_text())
        except ValueError as exc:
            record["result"] = {"error": f"unreadable JSON: {exc}"}
    record["ok"] = record["rc"] == 0 and not record["timed_out"] and "result" in record
    return record


def announce(record: dict) -> None:
    status = "ok" if record["ok"] else ("TIMED OUT" if record.get("timed_out") else "FAILED")
    print(f"{record['name']}: {status} ({record.get('seconds', 0)} s of {record.get('budget_s', 0)})", flush=True)


def write_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)  # a run cut off mid-write still leaves the last complete file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["run", "smoke"], required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--deadline", type=float, help="seconds for all stages (default by mode)")
    parser.add_argument("--only", help="comma-separated stage names (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every budget (a slow or busy machine)")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + (args.deadline or DEADLINE_S[args.mode]) * args.scale
    report: dict = {"mode": args.mode, "python": sys.version.split()[0], "stages": []}
    chosen = stages()
    if args.only:
        names = set(args.only.split(","))
        chosen = [s for s in chosen if s.name in names]
    with open(out / "gpu-run.log", "a") as log:
        if args.mode == "smoke":  # on a CPU the test files only skip: one process imports them all
            tests = [s for s in chosen if s.junit]
            chosen = [s for s in chosen if not s.junit]
            if tests:
                budget = min(SMOKE_TESTS_BUDGET_S * args.scale, deadline - time.monotonic())
                for record in run_tests_together(tests, out, budget, log):
                    report["stages"].append(record)
                    announce(record)
                write_atomic(out / "gpu-run.json", report)
        for stage in chosen:
            left = deadline - time.monotonic()
            budget = min(stage.budget_s[args.mode] * args.scale, left)
            if budget < 5:
                record = {"name": stage.name, "skipped": "the run's deadline came first", "ok": False}
            else:
                record = run_stage(stage, args.mode, out, budget, log)
            report["stages"].append(record)
            write_atomic(out / "gpu-run.json", report)
            announce(record)
    failed = [s["name"] for s in report["stages"] if not s["ok"]]
    print(f"{len(report['stages']) - len(failed)}/{len(report['stages'])} stages ok; see {out}/gpu-run.json")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
