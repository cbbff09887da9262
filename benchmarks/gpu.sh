#!/usr/bin/env bash
# Everything a lent GPU machine should run, in one call, and what it needs to get there.
#
#   bash benchmarks/gpu.sh prepare   # here (with PyPI): build .gpu/site312.tar.xz, the Python 3.12 packages the
#                                    # GPU machine lacks (benchmarks/gpu_bundle.txt), and check it (see below)
#   bash benchmarks/gpu.sh run       # there: unpack them, run the stages of benchmarks/gpu_stages.py (the `gpu`
#                                    # tests by file, Kokoro, Orpheus 3B with CUDA graphs, ...) within 8 minutes,
#                                    # each stage's JSON in $OUT (or ./gpu-results) as soon as it ends
#   bash benchmarks/gpu.sh smoke     # here or in CI: the same stages on the CPU with tiny sizes, in a venv that
#                                    # holds only the bundle's packages and the GPU machine's (.gpu-smoke/venv);
#                                    # GPU_SMOKE_SCALE=N multiplies its budgets on a slow machine
#
# With the device tool: one call, `carry: [".gpu"]`, `command: "bash benchmarks/gpu.sh run"`.
# The GPU machine (benchmarks/gpu_h200.txt: Python 3.12, torch 2.11 CUDA, transformers 5.17) reaches no
# network and takes at most 64 MiB of carried files per call. prepare checks that the bundle's requirements
# (markers evaluated for CPython 3.12) are met by the bundle or the image, imports every carried module
# with a Python 3.12 (pyenv's, where there is one) and lists what it cannot verify, and fails above the
# carry limit. vLLM (336 MB) cannot travel; its `gpu` tests skip there.
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=$(pwd)
GPU=.gpu
SITE_TAR=$GPU/site312.tar.xz
CARRY_LIMIT=$((64 * 1024 * 1024))
RUN_DEADLINE_S=470 # gpu.sh run, unpacking included: inside 8 minutes
PLATFORMS=(--python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64
  --platform manylinux_2_5_x86_64 --platform linux_x86_64 --platform any)

requirements() { grep -v '^#' "$1" | sed 's/#.*//; /^ *$/d'; }
# pip, without the lines this workplace's local index prints for every package it does not hold.
pip_() { "$@" 2> >(grep -v '^WARNING: Location' >&2); }

python312() { # pyenv's shims answer `command -v` without running: ask each candidate for its version
  local candidate
  for candidate in "$(pyenv root 2>/dev/null || echo ~/.pyenv)"/versions/3.12*/bin/python3.12 "$(command -v python3.12 || true)"; do
    if [[ -n $candidate && -x $candidate ]] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
}

prepare() {
  local work wheels site view py312
  work=$(mktemp -d) wheels=$work/wheels site=$work/site312 view=$work/view312
  mkdir -p "$GPU"
  # Wheels for CPython 3.12 manylinux, whatever Python runs pip; unzipped rather than `pip install --target`,
  # which checks Requires-Python against the running interpreter.
  pip_ python3 -m pip download -q --no-deps --only-binary=:all: "${PLATFORMS[@]}" -d "$wheels" \
    -r <(requirements benchmarks/gpu_bundle.txt)
  python3 -m benchmarks.gpu_bundle unpack "$wheels" "$site"
  find "$site" -name '*.so*' -type f -exec strip --strip-unneeded {} + 2>/dev/null || true

  # The check's Python 3.12 view of the image: its lighter packages the bundle imports (torch stays there).
  py312=$(python312)
  local check=(python3 -m benchmarks.gpu_bundle check "$site")
  if [[ -n $py312 ]]; then
    check+=(--python "$py312")
    if pip_ python3 -m pip download -q --only-binary=:all: "${PLATFORMS[@]}" -d "$work/view-wheels" \
      $(python3 -m benchmarks.gpu_bundle image-needs "$site" | grep -v -e '^torch' -e '^triton'); then
      python3 -m benchmarks.gpu_bundle unpack "$work/view-wheels" "$view"
      check+=(--view "$view")
    else
      echo "warning: no 3.12 view of the image's packages; more imports stay unverified" >&2
    fi
  else
    echo "warning: no Python 3.12 here: the bundle's imports are not verified, only its requirements" >&2
  fi
  "${check[@]}"

  tar -C "$work" -cf - site312 | xz -2 -T0 >"$SITE_TAR"
  rm -rf "$work"
  # What one device call carries: the bundle plus the working tree (tracked and untracked, not ignored).
  local tree bundle
  bundle=$(du -sb "$GPU" | cut -f1) # carry [".gpu"] takes the whole folder
  tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
  echo "bundle $((bundle / 1048576)) MiB + working tree $((tree / 1048576)) MiB (carry limit 64 MiB)"
  if ((bundle + tree > CARRY_LIMIT)); then
    echo "error: over the device tool's carry limit" >&2
    exit 1
  fi
}

run() {
  local started=$SECONDS out=${OUT:-$HERE/gpu-results}
  mkdir -p "$out"
  if [[ -f $SITE_TAR ]]; then
    rm -rf /tmp/site312
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall("/tmp")' "$SITE_TAR" # xz or not
    export PYTHONPATH=/tmp/site312:$HERE
  else
    echo "warning: no $SITE_TAR (run 'gpu.sh prepare' and carry .gpu): using what is installed" >&2
    export PYTHONPATH=$HERE
  fi
  export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TTS_TEST_TORCH_THREADS=4
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$out/gpu-run.log" 2>&1 || true
  python3 -m benchmarks.gpu_stages --mode run --out "$out" --deadline $((RUN_DEADLINE_S - (SECONDS - started))) || true
  ls -la "$out"
}

smoke() {
  # Outside .gpu, which a device call carries whole.
  local venv=.gpu-smoke/venv out=${OUT:-$HERE/.gpu-smoke/out}
  local stamp=$venv/.ready
  if [[ ! -f $stamp || benchmarks/gpu_bundle.txt -nt $stamp || benchmarks/gpu_h200.txt -nt $stamp ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv" # no system site-packages: only what is linked or installed below
    local site
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    python3 -m benchmarks.gpu_bundle link-image "$site"
    pip_ "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r <(requirements benchmarks/gpu_bundle.txt)
    touch "$stamp"
  fi
  rm -rf "$out"
  mkdir -p "$out"
  PYTHONPATH=$HERE HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TTS_TEST_TORCH_THREADS=1 \
    "$venv/bin/python" -m benchmarks.gpu_stages --mode smoke --out "$out" --scale "${GPU_SMOKE_SCALE:-1}"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  smoke) smoke ;;
  *) echo "usage: $0 prepare|run|smoke" >&2; exit 2 ;;
esac
