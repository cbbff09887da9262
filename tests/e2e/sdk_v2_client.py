"""Runs inside a separate `together==2.42.0` environment (it must not import the project).

The v2 line takes ``base_url`` as given (v3 appends ``/v1`` itself), so both forms are tried there.
Usage: python sdk_v2_client.py BASE_URL OUT_DIR; prints one JSON object with what it saw.
"""

import base64
import json
import sys

import together
from together import Together

base_url, out_dir = sys.argv[1], sys.argv[2]
client = Together(base_url=base_url, api_key="sk-local", max_retries=0)
model = "hexgrad/Kokoro-82M"
report = {"version": together.__version__}

client.audio.speech.create(model=model, input="Hello there.", voice="af_heart").write_to_file(f"{out_dir}/plain.wav")
stream = client.audio.speech.create(
    model=model, input="Hello there. Second sentence.", voice="af_heart", stream=True, response_format="raw"
)
report["streamed_bytes"] = sum(len(base64.b64decode(chunk.b64)) for chunk in stream)
raw = client.audio.speech.create(model=model, input="Hi.", voice="af_heart", response_format="raw")
report["raw_bytes"] = len(raw.read())
report["models"] = [m.id for m in client.models.list()]
report["voices"] = [v.name for v in client.audio.voices.list().data[0].voices]
try:
    client.audio.speech.create(model=model, input="Hi.", voice="zz_nobody")
except together.BadRequestError as exc:
    report["bad_voice"] = str(exc)
print(json.dumps(report))
