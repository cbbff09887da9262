"""Runs inside the separate `together<2` environment (it must not import the project).

Usage: python sdk_v1_client.py BASE_URL OUT_DIR; prints one JSON object with what it saw.
"""

import json
import sys

import together
from together import Together

base_url, out_dir = sys.argv[1], sys.argv[2]
client = Together(base_url=base_url, api_key="sk-local", max_retries=0)
model = "hexgrad/Kokoro-82M"
report = {"version": str(together.version)}

client.audio.speech.create(model=model, input="Hello there.", voice="af_heart").stream_to_file(f"{out_dir}/plain.wav")

stream = client.audio.speech.create(
    model=model,
    input="Hello there. Second sentence.",
    voice="af_heart",
    stream=True,
    response_format="raw",
    response_encoding="pcm_s16le",
)
stream.stream_to_file(f"{out_dir}/streamed.wav")

raw = client.audio.speech.create(model=model, input="Hi.", voice="af_heart", response_format="raw")
report["raw_bytes"] = len(raw.response.data)

report["voices"] = [v["name"] for v in client.audio.voices.list().data[0].voices]
report["models"] = [m.id for m in client.models.list()]
raw16 = client.audio.speech.create(
    model=model, input="Hi.", voice="af_heart", response_format="raw", response_encoding="pcm_s16le"
)
report["raw16_bytes"] = len(raw16.response.data)
try:
    client.audio.speech.create(model=model, input="Hi.", voice="zz_nobody")
except together.error.InvalidRequestError as exc:
    report["bad_voice"] = str(exc)
print(json.dumps(report))
