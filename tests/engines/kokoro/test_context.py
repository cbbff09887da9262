"""A chunk spoken with the text around it as context (engines/kokoro/context.py, ``ForwardItem.keep``).

The batched front predicts durations over the whole context and keeps the chunk's own tokens: its
durations are the context's, sliced, and a batch mixing such items with plain ones gives each what it
gets alone. At the engine, a request cut into two chunks then lasts exactly as long as the library
speaking the whole text as one utterance (both chunks see all of it).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.kokoro.batched import BatchedKokoro, ForwardItem
from engines.kokoro.context import WARM_FRAMES, WARM_TOKENS, token_ids, with_context
from engines.kokoro.loader import load_kmodel
from tests.engines.kokoro.conftest import MODEL, segments_for

VOCAB = {" ": 16, "a": 43, "b": 44, "c": 45, ".": 4}
TWO_SENTENCES = "Hello world. This sentence is the second one, and it is a little longer."


def test_the_chunk_keeps_its_usual_layout_inside_its_context():
    context = with_context("bc.", ["ab.", "ca."], "ab", VOCAB, max_tokens=64)
    ids = context.input_ids
    assert ids == [0, *token_ids("ab. ca.", VOCAB), 16, *token_ids("bc.", VOCAB), 16, *token_ids("ab", VOCAB), 0]
    start, end = context.keep
    assert context.warm == 7  # the earlier text's tokens the decoder warms up on ("ab. ca.": all of them)
    assert ids[start : start + context.warm] == token_ids("ab. ca.", VOCAB)
    lead = start + context.warm
    assert ids[lead] == 16 and ids[end - 1] == 16  # the space before and the space after
    assert ids[lead + 1 : end - 1] == token_ids("bc.", VOCAB)
    assert context.left and context.right and context.phonemes == len(ids) - 2
    long = with_context("bc.", ["abcabc. abcabc."], None, VOCAB, max_tokens=64)
    assert long.warm == 8 and long.input_ids[long.keep[0] + long.warm] == 16  # at most WARM_TOKENS


def test_without_text_around_it_a_chunk_is_what_kokoro_gets_alone():
    context = with_context("abc.", [], None, VOCAB, max_tokens=64)
    assert context.input_ids == [0, *token_ids("abc.", VOCAB), 0]
    assert context.keep == (0, len(context.input_ids)) and not context.left and not context.right


def test_the_earlier_text_gives_way_from_its_start_at_a_word_then_the_later_text():
    chunk = "abc" * 5
    context = with_context(chunk, ["aa bb cc", "ab ab ab"], "cc bb", VOCAB, max_tokens=30)
    assert len(context.input_ids) <= 30 and context.right
    left = context.input_ids[1 : context.keep[0] + context.warm]
    assert left == token_ids("bb cc ab ab ab", VOCAB)[-len(left) :] and left[0] != 16  # starts at a word
    tight = with_context(chunk, ["ab"], "cc bb", VOCAB, max_tokens=len(chunk) + 4)
    assert not tight.right and len(tight.input_ids) <= len(chunk) + 4


@pytest.fixture(scope="module")
def model(kokoro_dir):
    return load_kmodel(kokoro_dir, "cpu")


@pytest.fixture(scope="module")
def voice(kokoro_dir) -> torch.Tensor:
    return torch.load(kokoro_dir / "voices" / "af_heart.pt", weights_only=True)


def forward_item(ids: list[int], voice: torch.Tensor, keep=None, seed: int = 0) -> ForwardItem:
    return ForwardItem(torch.tensor(ids), voice[len(ids) - 3], 1.0, torch.Generator().manual_seed(seed), keep)


def test_kept_tokens_get_the_durations_the_whole_context_predicts(model, voice):
    batched = BatchedKokoro(model)
    vocab = model.vocab
    context = with_context("ðə sˈɛkənd wˈʌn.", ["hɛlˈO wˈɜɹld."], "ænd ðə θˈɜɹd.", vocab, model.context_length)
    (whole,) = batched.front([forward_item(context.input_ids, voice)])
    start, end = context.keep
    plain = with_context("ʃˈɔɹt.", [], None, vocab, model.context_length)
    batch = batched.front([forward_item(context.input_ids, voice, context.keep), forward_item(plain.input_ids, voice)])
    assert batch[0].durations.tolist() == whole.durations[start:end].tolist()
    assert batch[0].frames == int(whole.durations[start:end].sum())
    assert batch[0].asr.shape[-1] == batch[0].frames and batch[0].f0.shape[-1] == 2 * batch[0].frames
    (alone,) = batched.front([forward_item(plain.input_ids, voice)])
    assert batch[1].durations.tolist() == alone.durations.tolist()
    torch.testing.assert_close(batch[1].f0, alone.f0, atol=1e-4, rtol=1e-4)


def test_the_decoder_warms_up_on_the_last_frames_of_the_earlier_text_only(model, voice):
    """The warm tokens' durations are cut from their start to ``WARM_FRAMES`` in all; the chunk's stay."""
    batched = BatchedKokoro(model)
    earlier = ["hɛlˈO wˈɜɹld, ðɪs ɪz ðə fˈɜɹst sˈɛntəns."]
    context = with_context("ðə sˈɛkənd wˈʌn.", earlier, None, model.vocab, model.context_length)
    assert context.warm == WARM_TOKENS
    (uncut,) = batched.front([forward_item(context.input_ids, voice, context.keep)])
    assert int(uncut.durations[: context.warm].sum()) > WARM_FRAMES  # so there is something to cut
    item = forward_item(context.input_ids, voice, context.keep)
    item.warm, item.warm_frames = context.warm, WARM_FRAMES
    (cut,) = batched.front([item])
    warm = cut.durations[: context.warm]
    assert int(warm.sum()) == WARM_FRAMES and warm[-1] == uncut.durations[context.warm - 1]  # the last ones whole
    assert cut.durations[context.warm :].tolist() == uncut.durations[context.warm :].tolist()
    assert cut.frames == uncut.frames - int(uncut.durations[: context.warm].sum()) + WARM_FRAMES
    assert cut.asr.shape[-1] == cut.frames and cut.f0.shape[-1] == 2 * cut.frames


async def test_two_chunks_last_as_long_as_the_library_speaking_the_whole_text(
    make_kokoro, kokoro_dir, reference_pipeline
):
    engine = await make_kokoro()
    assert len(segments_for(engine, TWO_SENTENCES)) == 2  # so each chunk's context is the whole text
    ours = [chunk async for chunk in engine.synthesize(request(TWO_SENTENCES))]
    assert len(ours) == 2

    pack = torch.load(kokoro_dir / "voices" / "af_heart.pt", weights_only=True)
    (whole,) = list(reference_pipeline(TWO_SENTENCES, voice=pack))
    assert sum(chunk.samples.size for chunk in ours) == whole.audio.shape[0]

    alone = await make_kokoro(kokoro_segment_context=False)
    without = [chunk async for chunk in alone.synthesize(request(TWO_SENTENCES))]
    assert sum(chunk.samples.size for chunk in without) != whole.audio.shape[0]  # what the context changes


def request(text: str):
    from engines.base import SynthesisRequest

    return SynthesisRequest(model=MODEL, text=text, voice="af_heart", seed=3)


def test_no_context_is_the_default_of_nothing(model):
    """A chunk with nothing around it keeps no range: the front's plain path, bit for bit KModel's."""
    context = with_context("hɛlˈO.", [], None, model.vocab, model.context_length)
    assert not (context.left or context.right)
    assert np.array_equal(context.input_ids, [0, *token_ids("hɛlˈO.", model.vocab), 0])
