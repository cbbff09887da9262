"""Workload texts: three built-in sets (short ~10 words, medium ~40, long ~200) and a user's own file.

A user file is plain text with one request per line (blank lines and ``#`` comments skipped), or
JSON Lines with a ``"text"`` field per line (``.jsonl``). Requests cycle through the set in order,
so a run is repeatable: request ``i`` speaks text ``i % len(texts)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SHORT = [
    "The quick brown fox jumps over the lazy dog today.",
    "Please hold the line while I check your order status.",
    "Turn left at the next light, then keep going straight.",
    "Your meeting with the design team starts in ten minutes.",
]

MEDIUM = [
    "Thanks for calling. I can help you change your booking, check the status of a refund, or answer a "
    "question about your account. To get started, could you tell me the name on the reservation and the "
    "date you are travelling?",
    "Text to speech servers live or die by their time to first audio. A listener forgives a voice that is "
    "a little flat, but not a pause of two seconds before anything is heard, so the first sentence must "
    "leave early.",
    "The forecast for tomorrow calls for light rain in the morning, clearing by noon, with a high of "
    "eighteen degrees. Winds will come from the west at around fifteen kilometres an hour, easing in the "
    "evening.",
]

LONG = [
    "Benchmarks are easy to run and hard to run well. The first rule is to name the hardware: a figure "
    "without the processor, the accelerator and the software versions beside it cannot be compared with "
    "anything. The second rule is to warm up before measuring, because the first requests pay for lazy "
    "initialisation, cold caches and connection setup, none of which a long-running service sees. The "
    "third rule is to measure what a listener experiences. For speech that means the time until the first "
    "sound can be played, and then whether the audio keeps arriving faster than it is played back, so "
    "that the voice never stalls in the middle of a sentence. Throughput matters too, but only as long as "
    "those two promises hold. A server that produces many seconds of audio per second while every stream "
    "stutters has not served anyone. Finally, run each measurement more than once, on a quiet machine, "
    "and report the spread as well as the middle: the ninetieth and ninety-ninth percentiles are what "
    "users remember. With those rules in mind, a sweep over concurrency shows where a deployment bends: "
    "latency stays flat while the hardware has room, then grows as requests start to queue behind each "
    "other, and the knee of that curve is the capacity to plan for.",
    "The old lighthouse stood at the end of a narrow spit of rock, a mile from the nearest house. For a "
    "hundred years a keeper had climbed its stairs every evening at dusk to light the lamp, wind the "
    "clockwork that turned the lens, and write the weather in a heavy book bound in green cloth. The last "
    "keeper left when the light was automated, but the book stayed on its shelf, and the pages tell the "
    "story of the coast better than any history could. There are storms that lasted a week, ships that "
    "were warned off the reef in the nick of time, and quiet entries about seals on the rocks or a comet "
    "low over the water. One winter the keeper's daughter kept the light alone for a month while her "
    "father lay ill, and her handwriting fills those pages, small and careful, never missing an hour. "
    "Visitors still walk out along the spit on summer afternoons to read the book in a glass case by the "
    "door, and many of them stay until dusk to watch the beam sweep across the sea once more.",
]

BUILTIN = {"short": SHORT, "medium": MEDIUM, "long": LONG}


@dataclass(frozen=True)
class TextSet:
    name: str
    texts: tuple[str, ...]

    def pick(self, index: int) -> tuple[int, str]:
        """The text for request ``index`` and its position in the set."""
        position = index % len(self.texts)
        return position, self.texts[position]

    @property
    def mean_words(self) -> float:
        return sum(len(t.split()) for t in self.texts) / len(self.texts)


def load_texts(spec: str) -> TextSet:
    """``short``, ``medium``, ``long``, ``mixed`` (all three, interleaved) or a file path."""
    if spec in BUILTIN:
        return TextSet(spec, tuple(BUILTIN[spec]))
    if spec == "mixed":
        mixed = [t for group in zip(SHORT, MEDIUM, LONG + LONG[:1]) for t in group]
        return TextSet("mixed", tuple(mixed))
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ValueError(f"--texts: '{spec}' is neither a built-in set (short, medium, long, mixed) nor a file")
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".jsonl":
        texts = [json.loads(line)["text"] for line in lines if line.strip()]
    else:
        texts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError(f"--texts: no texts in {path}")
    return TextSet(path.name, tuple(texts))
