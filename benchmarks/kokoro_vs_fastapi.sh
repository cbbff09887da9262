#!/usr/bin/env bash
# Kokoro-82M on CPU: this server vs Kokoro-FastAPI, side by side on the same cores and weights.
#
# Both servers start pinned (taskset) to the same cores with the same torch thread count; each
# `tts-server bench` target runs alone while the other server sits idle, in alternating order:
#   1. streaming, the built-in `medium` texts at concurrency 1, 2, 4 (this server: SSE pcm_s16le;
#      Kokoro-FastAPI: OpenAI `pcm` bytes, lang_code "a"), Kokoro-FastAPI first;
#   2. one request's wall time: the same texts as one WAV each, one at a time, this server first.
# The bench tool records the load average before and after each run (results.json, hardware).
#
#   bash benchmarks/kokoro_vs_fastapi.sh KFA_DIR KFA_VENV WEIGHTS OUT [CORES] [THREADS] [REQUESTS]
#
# KFA_DIR: a checkout of remsky/Kokoro-FastAPI; KFA_VENV: a venv with its packages (see the README's
# Benchmarks section); WEIGHTS: Kokoro-82M in the HF layout (config.json, kokoro-v1_0.pth, voices/).
# Extra flags for this server: TTS_FLAGS="--kokoro-compile off --kokoro-dtype float32" (eager fp32) etc.
set -euo pipefail
KFA_DIR=$(realpath "$1"); KFA_VENV=$(realpath "$2"); WEIGHTS=$(realpath "$3"); OUT=$4
CORES=${5:-0,1}; THREADS=${6:-2}; REQUESTS=${7:-6}
VOICE=jf_alpha
mkdir -p "$OUT"
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS

# Kokoro-FastAPI looks for MODEL_DIR/v1_0/{kokoro-v1_0.pth,config.json}: a folder of links to WEIGHTS.
MODELS=$(mktemp -d)
mkdir -p "$MODELS/v1_0"
ln -s "$WEIGHTS/kokoro-v1_0.pth" "$WEIGHTS/config.json" "$MODELS/v1_0/"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
  for _ in $(seq 1 600); do curl -sf "$1" >/dev/null && return 0; sleep 1; done
  echo "server at $1 never became ready" >&2; return 1
}
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$MODELS"' EXIT

KFA_PORT=$(free_port)
(cd "$KFA_DIR" && USE_GPU=false DEVICE_TYPE=cpu PYTHONPATH="$KFA_DIR:$KFA_DIR/api" MODEL_DIR="$MODELS" \
  VOICES_DIR="$WEIGHTS/voices" DEFAULT_VOICE="$VOICE" DEFAULT_VOICE_CODE=a WEB_PLAYER_PATH="$KFA_DIR/web" ENABLE_WEB_PLAYER=false \
  exec taskset -c "$CORES" "$KFA_VENV/bin/python" -m uvicorn api.src.main:app --host 127.0.0.1 --port "$KFA_PORT" \
  >"$OUT/kokoro-fastapi.log" 2>&1) &
PIDS+=($!)
TTS_PORT=$(free_port)
# shellcheck disable=SC2086  # TTS_FLAGS is a list of flags
taskset -c "$CORES" python3 -m server.cli serve --host 127.0.0.1 --port "$TTS_PORT" --kokoro-source "$WEIGHTS" \
  --device cpu --torch-threads "$THREADS" ${TTS_FLAGS:-} >"$OUT/tts-server.log" 2>&1 &
PIDS+=($!)
wait_ready "http://127.0.0.1:$KFA_PORT/health"
wait_ready "http://127.0.0.1:$TTS_PORT/ready"

KFA="url=http://127.0.0.1:$KFA_PORT/v1,name=kokoro-fastapi,api=openai,model=kokoro,voice=$VOICE"
OURS="url=http://127.0.0.1:$TTS_PORT,name=tts-server,voice=$VOICE"
python3 -m benchmarks --target "$KFA,format=pcm,stream=bytes" --target "$OURS,encoding=pcm_s16le,stream=sse" \
  --extra '{"lang_code": "a"}' --texts medium --concurrency 1,2,4 --requests "$REQUESTS" --warmup 2 --no-progress \
  --title "Kokoro-82M on CPU cores $CORES: tts-server vs Kokoro-FastAPI, streaming" --out "$OUT/streaming"
python3 -m benchmarks --target "$OURS,format=wav,stream=off" --target "$KFA,format=wav,stream=off" \
  --extra '{"lang_code": "a"}' --texts medium --concurrency 1 --requests "$REQUESTS" --warmup 1 --no-progress \
  --title "Kokoro-82M on CPU cores $CORES: one WAV request at a time" --out "$OUT/one-request"
