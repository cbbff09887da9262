"""A padded, batched Kokoro-82M forward over one ``kokoro.KModel``'s own modules and weights.

``KModel.forward_with_tokens`` handles one utterance. :class:`BatchedKokoro` runs B phoneme
sequences of different lengths together and gives each what a solo run gives: ALBERT and the text
encoder get real lengths and masks, the LSTMs run packed, durations are rounded per item, every
instance norm sees an item's real frames only, and the vocoder draws its randomness from each
item's own ``torch.Generator``, never the global RNG.

How exact: a batch of one is bit-identical on CPU to ``KModel.forward_with_tokens`` run with the
global RNG seeded to ``s`` when the item's own generator is seeded to ``s``. In a
bigger batch the front differs from a solo front by float rounding (the batched LSTM GEMMs, ~1e-6
relative), and the decoder is exact given the same prosody (~1e-6). But on voiced audio the sine
source amplifies that rounding in F0 into other harmonic phases (they integrate F0 over the whole
utterance, and the harmonic STFT's ``angle`` flips by 2 pi near the negative real axis): the same
seed gives the same spectrum but not the same samples in a batch as alone.

Usage::

    batched = BatchedKokoro(kmodel)
    prosody = batched.front(items)  # ALBERT, text encoders, durations, F0 / energy
    audio = batched.decode(prosody, [item.generator for item in items])

``decode`` also takes a single item: on CPU the decoder is compute-bound already at batch 1.
``BatchedKokoro(kmodel, compile=True)`` compiles the vocoder's resblocks (``engines/compiled.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from engines.compiled import CompiledFn
from engines.kokoro.batched_norm import TimeMask, adain_res_blk, adain_res_block1, packed_lstm, pad_stack
from engines.kokoro.batched_vocoder import Stages, decode_stages, run_all

if TYPE_CHECKING:
    from kokoro import KModel

STYLE_DIM = 128  # ref_s = [decoder style (128) | prosody style (128)]


@dataclass
class ForwardItem:
    input_ids: torch.LongTensor  # [T] token ids including the leading and trailing 0
    ref_s: torch.Tensor  # [1, 256] or [256]: the voice pack's row for this phoneme count
    speed: float
    generator: torch.Generator  # the vocoder's randomness for this item, on the model's device
    # The tokens [start, end) of ``input_ids`` to speak when the rest is context: ALBERT and the
    # duration LSTM read the whole sequence, the alignment, F0 / energy and decoder only these.
    keep: tuple[int, int] | None = None
    # Of the kept tokens, how many lead with the earlier text's end, decoded only to warm the decoder
    # up (``context.py``): their frames are cut to the last ``warm_frames``.
    warm: int = 0
    warm_frames: int = 0


@dataclass
class Prosody:
    durations: torch.LongTensor  # [T] frames per token
    frames: int  # durations.sum()
    asr: torch.Tensor  # [C, frames] text features aligned to frames
    f0: torch.Tensor  # [2 * frames]
    n: torch.Tensor  # [2 * frames]
    style: torch.Tensor  # [128] the decoder's half of ref_s


class BatchedKokoro:
    """Batched inference over ``model`` (a ``kokoro.KModel`` in eval mode); holds no weights of its own."""

    def __init__(self, model: KModel, *, compile: bool = False, decoder_dtype: torch.dtype = torch.float32) -> None:
        if model.decoder.generator.m_source.l_sin_gen.flag_for_pulse:  # kokoro's configs never set it
            raise ValueError("BatchedKokoro reproduces SineGen's sine mode only; this model uses pulse mode")
        self.model = model
        # Below fp32, the decoder runs under autocast (``precision.py``); the front always runs in fp32.
        self.decoder_dtype = decoder_dtype
        # The vocoder's Snake resblocks: the decoder's memory-bound part (see engines/compiled.py).
        self.resblock = CompiledFn(adain_res_block1, "Kokoro vocoder resblocks") if compile else None

    @property
    def compiled(self) -> bool:
        """Whether decoding runs compiled (False once a compile failure fell back to eager)."""
        return self.resblock is not None and self.resblock.active

    def compile_now(self) -> None:
        """With ``compile``: compile the decoder's graphs now (at load), not in a request's step.

        One item and two of equal length (unpadded: the kokoro modules as they are) and two of different
        lengths (the masked path) cover every later shape: dynamo specialises a batch of 1, and the graphs
        are dynamic beyond it.
        """
        if self.resblock is None:
            return
        width = self.model.decoder.asr_res[0].in_channels

        def item(frames: int) -> Prosody:
            zeros = torch.zeros(2 * frames, device=self.device)
            asr = torch.zeros(width, frames, device=self.device)
            style = torch.zeros(STYLE_DIM, device=self.device)
            return Prosody(torch.ones(frames, dtype=torch.long), frames, asr, zeros, zeros, style)

        def generators(count: int) -> list[torch.Generator]:
            return [torch.Generator(self.device).manual_seed(0) for _ in range(count)]

        self.decode([item(12)], generators(1))
        self.decode([item(12), item(12)], generators(2))
        self.decode([item(12), item(7)], generators(2))

    @property
    def device(self) -> torch.device:
        return self.model.device

    def __call__(self, items: Sequence[ForwardItem]) -> list[tuple[torch.Tensor, torch.LongTensor]]:
        prosody = self.front(items)
        audio = self.decode(prosody, [item.generator for item in items])
        return [(wave, p.durations) for wave, p in zip(audio, prosody)]

    @torch.inference_mode()
    def front(self, items: Sequence[ForwardItem]) -> list[Prosody]:
        """Everything before the decoder, for all items at once."""
        if not items:
            return []
        model, device = self.model, self.device
        lengths = [int(item.input_ids.shape[-1]) for item in items]
        if max(lengths) > model.context_length:
            raise ValueError(f"{max(lengths)} tokens exceed ALBERT's context of {model.context_length}")
        width = max(lengths)
        input_ids = pad_stack([item.input_ids.reshape(-1).to(device) for item in items], width)
        ref_s = torch.stack([item.ref_s.reshape(-1).to(device) for item in items])
        lengths_cpu = torch.tensor(lengths, dtype=torch.long)  # pack_padded_sequence wants them on the CPU
        text_mask = torch.arange(width, device=device)[None, :] >= lengths_cpu.to(device)[:, None]  # True = padding
        prosody_style = ref_s[:, STYLE_DIM:]

        bert = model.bert(input_ids, attention_mask=(~text_mask).int())
        d_en = model.bert_encoder(bert).transpose(-1, -2)
        d = model.predictor.text_encoder(d_en, prosody_style, lengths_cpu, text_mask)  # [B, T, C + style]
        x = packed_lstm(model.predictor.lstm, d, lengths)
        duration_sums = torch.sigmoid(model.predictor.duration_proj(x)).sum(dim=-1)
        durations = torch.zeros_like(input_ids)
        for b, item in enumerate(items):
            # Divided per item by a Python float, as KModel does: a float32 speed tensor could
            # round differently and move a duration across .5.
            durations[b, : lengths[b]] = torch.round(duration_sums[b, : lengths[b]] / item.speed).clamp(min=1).long()
        t_en = model.text_encoder(input_ids, lengths_cpu, text_mask)  # [B, C, T]
        if any(item.keep is not None for item in items):
            durations, d, t_en, lengths = _kept_tokens(items, lengths, durations, d, t_en)
        frames = durations.sum(dim=1).tolist()
        alignment = token_to_frame_alignment(durations, max(frames)).to(d.dtype)  # [B, T, F]

        en = d.transpose(-1, -2) @ alignment
        frame_mask = TimeMask.build(frames, alignment.shape[-1], device)
        f0, n = self._f0_and_energy(en, prosody_style, frame_mask)
        asr = t_en @ alignment

        return [
            Prosody(
                durations=durations[b, : lengths[b]],
                frames=frames[b],
                asr=asr[b, :, : frames[b]],
                f0=f0[b, : 2 * frames[b]],
                n=n[b, : 2 * frames[b]],
                style=ref_s[b, :STYLE_DIM],
            )
            for b in range(len(items))
        ]

    def _f0_and_energy(
        self, en: torch.Tensor, style: torch.Tensor, frame_mask: TimeMask
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ProsodyPredictor.F0Ntrain`` for a padded batch: ``[B, 2F]`` F0 and energy curves."""
        predictor = self.model.predictor
        shared = packed_lstm(predictor.shared, en.transpose(-1, -2), frame_mask.lengths).transpose(-1, -2)
        curves = []
        for blocks, projection in ((predictor.F0, predictor.F0_proj), (predictor.N, predictor.N_proj)):
            x, mask = shared, frame_mask
            for block in blocks:
                x, mask = adain_res_blk(block, x, style, mask)
            curves.append(mask.apply_(projection(x)).squeeze(1))
        return curves[0], curves[1]

    @torch.inference_mode()
    def decode(self, prosody: Sequence[Prosody], generators: Sequence[torch.Generator]) -> list[torch.Tensor]:
        """Decoder + vocoder for all items at once: each audio 1-D, ``600 * frames`` samples, on the device."""
        return run_all(self.decode_stages(prosody, generators))

    def decode_stages(self, prosody: Sequence[Prosody], generators: Sequence[torch.Generator]) -> Stages:
        """:meth:`decode` a slice per ``next()`` (call it under ``torch.inference_mode``): a long item's
        decoder can yield the thread to another request's first audio. The audio is the StopIteration's value."""
        if len(prosody) != len(generators):
            raise ValueError(f"{len(prosody)} items but {len(generators)} generators")
        if not prosody:
            return []
        frames = [p.frames for p in prosody]
        asr = pad_stack([p.asr for p in prosody], max(frames))
        style = torch.stack([p.style for p in prosody])
        f0, n = [p.f0 for p in prosody], [p.n for p in prosody]
        resblock = self.resblock or adain_res_block1
        stages = decode_stages(self.model.decoder, asr, f0, n, style, frames, generators, resblock)
        audio = yield from (stages if self.decoder_dtype == torch.float32 else self._autocast(stages))
        samples_per_frame = self.samples_per_frame
        for wave, count in zip(audio, frames):
            if wave.shape[-1] != samples_per_frame * count:
                raise RuntimeError(f"vocoder gave {wave.shape[-1]} samples for {count} frames")
        return audio

    def _autocast(self, stages: Stages) -> Stages:
        """``stages`` with each one run under autocast to ``decoder_dtype`` (the state is per thread, and
        another request's work may run between two stages); the audio back in fp32."""
        while True:
            with torch.autocast(self.device.type, dtype=self.decoder_dtype):
                try:
                    next(stages)
                except StopIteration as done:
                    return [wave.float() for wave in done.value]
            yield

    @property
    def samples_per_frame(self) -> int:
        """Audio samples per duration frame: 2 (decoder upsampling) x the generator's F0 upsampling (300)."""
        return 2 * int(self.model.decoder.generator.f0_upsamp.scale_factor)


def _kept_tokens(
    items: Sequence[ForwardItem],
    lengths: list[int],
    durations: torch.Tensor,
    d: torch.Tensor,
    t_en: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Each item's spoken tokens (``keep``; all of them without) out of its context, padded again."""
    ranges = [item.keep or (0, length) for item, length in zip(items, lengths)]
    kept = [end - start for start, end in ranges]
    width = max(kept)
    durations = pad_stack([durations[b, start:end] for b, (start, end) in enumerate(ranges)], width)
    for b, item in enumerate(items):
        if item.warm:
            durations[b, : item.warm] = last_frames(durations[b, : item.warm], item.warm_frames)
    d = pad_stack([d[b, start:end].transpose(0, 1) for b, (start, end) in enumerate(ranges)], width).transpose(1, 2)
    t_en = pad_stack([t_en[b, :, start:end] for b, (start, end) in enumerate(ranges)], width)
    return durations, d, t_en, kept


def last_frames(durations: torch.Tensor, frames: int) -> torch.Tensor:
    """``durations`` (one or more) cut, from their start, to cover only their last ``frames`` frames (tokens
    may get 0)."""
    ends = durations.cumsum(dim=0)
    ends = (ends - (ends[-1] - frames).clamp(min=0)).clamp(min=0)
    return torch.diff(ends, prepend=ends.new_zeros(1))


def token_to_frame_alignment(durations: torch.Tensor, frames: int) -> torch.Tensor:
    """``[B, T, frames]`` 0/1 matrix: token t covers frames [start_t, end_t) of its item.

    Built from cumulative sums compared with a frame index (no loop over frames); tokens with
    duration 0 (the padding) cover nothing, so padded frames of shorter items stay empty.
    """
    ends = durations.cumsum(dim=-1)
    starts = ends - durations
    frame = torch.arange(frames, device=durations.device)
    return (frame >= starts[..., None]) & (frame < ends[..., None])
