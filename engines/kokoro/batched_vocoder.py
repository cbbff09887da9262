"""Kokoro's decoder and iSTFTNet generator over a padded batch, with per-item randomness.

The convolutions (decoder AdainResBlk1d blocks, generator ups / resblocks / noise_res /
conv_post) run batched with masks (see ``batched_norm``). The per-sample signal work whose edges
matter runs per item, on each item's exact length: F0 upsampling, the sine source (its linear
interpolations and cumsum, and its random draws from the item's own generator), the harmonic STFT
(reflect padding at both ends) and the final iSTFT (its window normalisation at the end).

The work is written as a Python generator that yields between stages (the decoder blocks, then
each upsampling and each of its resblocks): :func:`decode_stages` lets a scheduler run a long
item's decoder a slice at a time and put another request's first audio in between (see
``engines/kokoro/schedule.py``); the ops and their order are the same, so the audio is too.
:func:`decode_batch` runs all stages at once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from engines.kokoro.batched_norm import TimeMask, adain_res_blk, adain_res_block1, pad_stack

Resblock = Callable[[nn.Module, torch.Tensor, torch.Tensor, TimeMask], torch.Tensor]
#: A decode in progress: ``next()`` runs one more stage; the audio comes as the StopIteration's value.
Stages = Generator[None, None, list[torch.Tensor]]


def run_all(stages: Stages) -> list[torch.Tensor]:
    """Run a decode's remaining stages; its audio."""
    while True:
        try:
            next(stages)
        except StopIteration as done:
            return done.value


def decode_batch(*args, **kwargs) -> list[torch.Tensor]:
    """:func:`decode_stages`, all at once."""
    return run_all(decode_stages(*args, **kwargs))


def decode_stages(
    decoder: nn.Module,
    asr: torch.Tensor,
    f0_curves: Sequence[torch.Tensor],
    n_curves: Sequence[torch.Tensor],
    style: torch.Tensor,
    frames: Sequence[int],
    generators: Sequence[torch.Generator],
    resblock: Resblock = adain_res_block1,
) -> Stages:
    """``kokoro.istftnet.Decoder.forward`` for B items, a stage per ``next()``.

    asr: ``[B, C, F]`` zero beyond each item's frames; f0_curves / n_curves: per item ``[2 * frames]``;
    style: ``[B, 128]``; ``resblock`` runs the generator's Snake resblocks (``engines.compiled.CompiledFn``
    compiles them). Returns each item's audio, 1-D, on the decoder's device.
    """
    width = asr.shape[-1]
    frame_mask = TimeMask.build(frames, width, asr.device)
    f0 = pad_stack(f0_curves, 2 * width)
    n = pad_stack(n_curves, 2 * width)

    f0_down = frame_mask.apply_(decoder.F0_conv(f0.unsqueeze(1)))
    n_down = frame_mask.apply_(decoder.N_conv(n.unsqueeze(1)))
    x, mask = adain_res_blk(decoder.encode, torch.cat([asr, f0_down, n_down], dim=1), style, frame_mask)
    asr_res = frame_mask.apply_(decoder.asr_res(asr))
    concat_residual = True
    for block in decoder.decode:
        if concat_residual:
            x = torch.cat([x, asr_res, f0_down, n_down], dim=1)
        x, mask = adain_res_blk(block, x, style, mask)
        if block.upsample_type != "none":
            concat_residual = False
    yield
    return (yield from generate_stages(decoder.generator, x, mask, style, f0_curves, generators, resblock))


def generate_stages(
    generator: nn.Module,
    x: torch.Tensor,
    mask: TimeMask,
    style: torch.Tensor,
    f0_curves: Sequence[torch.Tensor],
    generators: Sequence[torch.Generator],
    resblock: Resblock = adain_res_block1,
) -> Stages:
    """``kokoro.istftnet.Generator.forward`` for B items (``x``: ``[B, 512, 2F]``, zero-padded), in stages."""
    harmonics = [harmonic_features(generator, f0, rng) for f0, rng in zip(f0_curves, generators)]
    har_mask = TimeMask.build([h.shape[-1] for h in harmonics], max(h.shape[-1] for h in harmonics), x.device)
    har = har_mask.apply_(pad_stack(harmonics, har_mask.width))

    for i in range(generator.num_upsamples):
        x = F.leaky_relu(x, negative_slope=0.1)
        source_mask = har_mask.after(generator.noise_convs[i])
        x_source = source_mask.apply_(generator.noise_convs[i](har))
        x_source = resblock(generator.noise_res[i], x_source, style, source_mask)
        mask = mask.after(generator.ups[i])
        x = mask.apply_(generator.ups[i](x))
        if i == generator.num_upsamples - 1:
            left, right = generator.reflection_pad.padding
            # A right-hand reflection would mirror the padding, not the item's end.
            assert right == 0, "the generator's reflection pad is expected on the left only"
            x = generator.reflection_pad(x)
            mask = mask.left_padded(left)
        if mask.lengths != source_mask.lengths or mask.width != source_mask.width:
            raise RuntimeError(f"upsampled lengths {mask.lengths} != harmonic lengths {source_mask.lengths}")
        x = x + x_source
        xs = None
        for j in range(generator.num_kernels):
            yield
            out = resblock(generator.resblocks[i * generator.num_kernels + j], x, style, mask)
            xs = out if xs is None else xs + out
        x = xs / generator.num_kernels
    x = generator.conv_post(F.leaky_relu(x))

    bins = generator.post_n_fft // 2 + 1
    audio = []
    for b, length in enumerate(mask.lengths):
        item = x[b : b + 1, :, :length]
        spec = torch.exp(item[:, :bins, :])
        phase = torch.sin(item[:, bins:, :])
        audio.append(generator.stft.inverse(spec, phase).reshape(-1))
    return audio


def harmonic_features(generator: nn.Module, f0_curve: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """The STFT (magnitude ++ phase, ``[n_fft + 2, steps]``) of one item's harmonic source.

    Mirrors ``Generator.forward``'s no-grad head for a batch of one, drawing from ``rng``.
    """
    f0 = generator.f0_upsamp(f0_curve[None, None]).transpose(1, 2)  # [1, samples, 1]
    har_source = sine_source(generator.m_source, f0, rng).transpose(1, 2).squeeze(1)
    har_spec, har_phase = generator.stft.transform(har_source)
    return torch.cat([har_spec, har_phase], dim=1)[0]


def sine_source(source: nn.Module, f0: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """``SourceModuleHnNSF.forward`` (harmonic branch) with its random draws taken from ``rng``.

    Draws in the order and shapes a solo kokoro run takes them from the global RNG: the initial
    phases, the sine noise, then the noise-branch noise. The last one is unused by the generator
    but drawn anyway, so ``rng`` ends where the global RNG would.
    """
    sine = source.l_sin_gen
    harmonic_numbers = torch.FloatTensor([[range(1, sine.harmonic_num + 2)]]).to(f0.device)
    fn = torch.multiply(f0, harmonic_numbers)

    # SineGen._f02sine
    rad_values = (fn / sine.sampling_rate) % 1
    rand_ini = torch.rand(fn.shape[0], fn.shape[2], device=fn.device, generator=rng)
    rand_ini[:, 0] = 0
    rad_values[:, 0, :] = rad_values[:, 0, :] + rand_ini
    rad_values = F.interpolate(
        rad_values.transpose(1, 2), scale_factor=1 / sine.upsample_scale, mode="linear"
    ).transpose(1, 2)
    phase = torch.cumsum(rad_values, dim=1) * 2 * torch.pi
    phase = F.interpolate(
        phase.transpose(1, 2) * sine.upsample_scale, scale_factor=sine.upsample_scale, mode="linear"
    ).transpose(1, 2)
    sine_waves = torch.sin(phase) * sine.sine_amp

    # SineGen.forward
    uv = sine._f02uv(f0)
    noise_amp = uv * sine.noise_std + (1 - uv) * sine.sine_amp / 3
    noise = noise_amp * randn_like(sine_waves, rng)
    sine_waves = sine_waves * uv + noise

    # SourceModuleHnNSF.forward
    sine_merge = source.l_tanh(source.l_linear(sine_waves))
    randn_like(uv, rng)  # the noise branch, unused by the generator
    return sine_merge


def randn_like(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """``torch.randn_like(x)`` drawn from ``rng``.

    Same memory layout as ``x``, like ``randn_like``: the sine waves are a transposed view, and
    the noise is filled in memory order, so a contiguous ``torch.randn(x.shape)`` would put the
    same numbers at other positions.
    """
    return torch.empty_like(x).normal_(generator=rng)
