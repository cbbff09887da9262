"""OpenAI's ``instructions`` as Orpheus's emotion tags, put before the input (the OpenAI-style route)."""

from __future__ import annotations

import re

#: Non-verbal tags Orpheus's fine-tuned model speaks (canopylabs/orpheus-3b-0.1-ft model card).
ORPHEUS_TAGS = ("laugh", "chuckle", "sigh", "cough", "sniffle", "groan", "yawn", "gasp")
_TAG_WORDS = re.compile(r"<?\b(" + "|".join(ORPHEUS_TAGS) + r")(?:s|ed|ing)?\b>?", re.IGNORECASE)


def orpheus_tags(instructions: str | None) -> str:
    """``"sigh, then laugh"`` -> ``"<sigh> <laugh> "``: each tag the instructions name, once, in order."""
    seen: list[str] = []
    for match in _TAG_WORDS.finditer(instructions or ""):
        tag = match.group(1).lower()
        if tag not in seen:
            seen.append(tag)
    return "".join(f"<{tag}> " for tag in seen)
