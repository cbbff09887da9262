"""OpenAI's voice names -> Kokoro's, for the OpenAI-style route (server/openai/).

Kokoro ships voices named after most of OpenAI's; the others get a Kokoro voice of a similar register.
"""

from __future__ import annotations

from types import MappingProxyType

OPENAI_VOICES = MappingProxyType(
    {
        "alloy": "af_alloy",
        "ash": "am_adam",
        "ballad": "bm_george",
        "coral": "af_heart",
        "echo": "am_echo",
        "fable": "bm_fable",
        "nova": "af_nova",
        "onyx": "am_onyx",
        "sage": "af_sarah",
        "shimmer": "af_sky",
        "verse": "am_michael",
        "marin": "af_bella",
        "cedar": "am_liam",
    }
)
