"""How long Kokoro speaks a text cut into segments, against the same text as one utterance (issue 19).

Counts predicted frames only (``KModel``'s own duration predictor; no decoder), so it runs in seconds
on a CPU. For each voice and each way of cutting the text it prints the total frames of the segments
after the server's join trim (``engines/kokoro/joins.py``: the leading boundary token of every segment
but the first, the trailing one of every segment but the last) under three ways of predicting them:

- ``own``: each segment alone, the voice's style row chosen by its own length (what the server does);
- ``own_total_row``: each segment alone, the style row of the whole text's length;
- ``left``: each segment after the text before it (the previous segment) in the predictor's input
  (ALBERT and the LSTM see it), its own tokens' durations taken out, the style row of the context's length;
- ``context``: likewise with the previous and the next segment;
- ``whole``: likewise with the whole text as context.

With context, a segment's tokens include the space before it (the pause between sentences the single
utterance has); its boundary tokens exist only where the context ends.

    python -m benchmarks.kokoro_segment_durations --weights ~/.cache/tts-realweights/kokoro-82m \\
        --voices jf_alpha,jm_kumo,jf_nezumi
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

# The e2e length test's text (tests/e2e/test_real_speech.py), one sentence per entry.
SENTENCES = (
    "The morning train left the old station a little after seven, carrying tired commuters toward the distant city.",
    "Rain had fallen steadily through the night, and the wide fields beside the tracks shone under a pale grey sky.",
    "By the time it reached the river bridge, most of the passengers were reading their papers or quietly asleep.",
)
CUTS = {"2 segments": (SENTENCES[0], f"{SENTENCES[1]} {SENTENCES[2]}"), "3 segments": SENTENCES}


class Predictor:
    """Kokoro's duration prediction, as ``KModel.forward_with_tokens`` does it, for any style row."""

    def __init__(self, weights: Path) -> None:
        from kokoro import KModel, KPipeline

        from engines.kokoro.g2p import spacy_model_alias

        self.model = KModel(
            repo_id="hexgrad/Kokoro-82M", config=str(weights / "config.json"), model=str(weights / "kokoro-v1_0.pth")
        ).eval()
        with spacy_model_alias():
            self.g2p = KPipeline(lang_code="a", repo_id="hexgrad/Kokoro-82M", model=False)

    def phonemes(self, text: str) -> str:
        return "".join(result.phonemes for result in self.g2p(text))

    @torch.no_grad()
    def durations(self, phonemes: str, voice: torch.Tensor, row: int) -> list[int]:
        """Frames per token: the boundary token, each phoneme, the boundary token."""
        m = self.model
        ids = torch.tensor([[0, *(m.vocab[c] for c in phonemes if c in m.vocab), 0]])
        lengths = torch.tensor([ids.shape[-1]])
        mask = torch.zeros_like(ids, dtype=torch.bool)
        encoded = m.bert_encoder(m.bert(ids, attention_mask=(~mask).int())).transpose(-1, -2)
        d = m.predictor.text_encoder(encoded, voice[row][:, 128:], lengths, mask)
        x, _ = m.predictor.lstm(d)
        frames = torch.sigmoid(m.predictor.duration_proj(x)).sum(-1)
        return torch.round(frames).clamp(min=1).long().squeeze(0).tolist()


def segmented_frames(p: Predictor, segments: tuple[str, ...], voice: torch.Tensor, mode: str, total_row: int) -> int:
    pieces = [p.phonemes(text) for text in segments]
    frames = 0
    for k, piece in enumerate(pieces):
        first, last = k == 0, k == len(pieces) - 1
        if mode in ("left", "context", "whole"):
            before, after = pieces[:k], pieces[k + 1 :]
            if mode != "whole":
                before, after = before[-1:], ([] if mode == "left" else after[:1])
            left = "".join(f"{other} " for other in before)
            context = left + piece + "".join(f" {other}" for other in after)
            durations = p.durations(context, voice, len(context) - 1)
            start = 1 + len(left) - (0 if first else 1)  # from the space before the segment (the join's pause)
            frames += sum(durations[start : 1 + len(left) + len(piece)])
            frames += (durations[0] if first else 0) + (durations[-1] if not after else 0)
        else:
            durations = p.durations(piece, voice, total_row if mode == "own_total_row" else len(piece) - 1)
            frames += sum(durations) - (0 if first else durations[0]) - (0 if last else durations[-1])
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="Kokoro-82M directory (config.json, .pth, voices/)")
    parser.add_argument("--voices", default="jf_alpha,jm_kumo,jf_nezumi")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    predictor = Predictor(args.weights)
    whole_phonemes = predictor.phonemes(" ".join(SENTENCES))
    rows = []
    for name in args.voices.split(","):
        voice = torch.load(args.weights / "voices" / f"{name}.pt", weights_only=True)
        whole = sum(predictor.durations(whole_phonemes, voice, len(whole_phonemes) - 1))
        for cut, segments in CUTS.items():
            for mode in ("own", "own_total_row", "left", "context", "whole"):
                frames = segmented_frames(predictor, segments, voice, mode, len(whole_phonemes) - 1)
                rows.append({"voice": name, "cut": cut, "mode": mode, "whole_frames": whole, "frames": frames,
                             "extra": round(frames / whole - 1, 4)})  # fmt: skip
    json.dump({"command": "python -m benchmarks.kokoro_segment_durations " + " ".join(argv or sys.argv[1:]),
               "rows": rows}, sys.stdout, indent=1)  # fmt: skip
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
