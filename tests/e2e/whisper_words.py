"""Runs inside the realweights venv (faster-whisper): print Whisper's word timings of a WAV as JSON.

Usage: python whisper_words.py WAV MODEL_DIR -> [{"word", "start", "end"}, ...]
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import soundfile as sf  # noqa: E402
from faster_whisper import WhisperModel  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

wav, model_dir = sys.argv[1], sys.argv[2]
audio, rate = sf.read(wav, dtype="float32")
if rate != 16000:
    audio = resample_poly(audio, 16000, rate).astype("float32")
model = WhisperModel(model_dir, device="cpu", compute_type="int8", local_files_only=True)
segments, _ = model.transcribe(audio, language="en", beam_size=5, word_timestamps=True, vad_filter=False)
words = [{"word": w.word.strip(), "start": w.start, "end": w.end} for s in segments for w in s.words]
print(json.dumps(words))
