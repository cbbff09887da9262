"""Build Orpheus-shaped weights offline: a tiny random Llama, a real-layout tokenizer, random SNAC.

Everything is saved in the Hugging Face repos' layouts, so the engine loads it exactly as it loads
canopylabs/orpheus-3b-0.1-ft and hubertsiuzdak/snac_24khz. Used by the tests' session fixtures and
by benchmarks/orpheus_bench.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from engines.orpheus.tokens import VOCAB_SIZE

TEXT_VOCAB = 128000  # Llama-3's regular (BPE) tokens
LLAMA_SPECIALS = 256  # <|begin_of_text|> (128000) ... <|eot_id|> (128009) ... 128255
CUSTOM_TOKEN_BASE = TEXT_VOCAB + LLAMA_SPECIALS  # <custom_token_N> has id 128256 + N

# hubertsiuzdak/snac_24khz config.json
SNAC_24KHZ = {
    "sampling_rate": 24000,
    "encoder_dim": 48,
    "encoder_rates": [2, 4, 8, 8],
    "decoder_dim": 1024,
    "decoder_rates": [8, 8, 4, 2],
    "attn_window_size": None,
    "codebook_size": 4096,
    "codebook_dim": 8,
    "vq_strides": [4, 2, 1],
    "noise": True,
    "depthwise": True,
}

_CORPUS = [
    "tara: Hello there, this is a test of the speech engine.",
    "The quick brown fox jumps over the lazy dog. <laugh> That was fun! <sigh>",
    "leah: How are you doing today? I'm fine, thanks. <chuckle> <cough> <gasp> <yawn>",
    "Numbers like 1, 2, 3 and words such as zebra, quartz, and jukebox. <groan> <sniffle>",
]


def _llama_special_names() -> list[str]:
    names = [f"<|reserved_special_token_{i}|>" for i in range(LLAMA_SPECIALS)]
    names[0], names[1], names[9] = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"
    names[6], names[7] = "<|start_header_id|>", "<|end_header_id|>"
    return names


def build_tokenizer(directory: Path) -> None:
    """Byte-level BPE padded to 128,000 entries, then Llama-3's specials and Orpheus's custom tokens."""
    from tokenizers import (
        AddedToken,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=600, initial_alphabet=alphabet, show_progress=False)
    trained.train_from_iterator(_CORPUS, trainer)
    spec = json.loads(trained.to_str())["model"]
    vocab = dict(spec["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["merges"]]
    for filler in range(len(vocab), TEXT_VOCAB):  # unreachable entries: only the ids matter
        vocab[f"<|filler_{filler}|>"] = filler

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = _llama_special_names() + [f"<custom_token_{n}>" for n in range(VOCAB_SIZE - CUSTOM_TOKEN_BASE)]
    tokenizer.add_special_tokens([AddedToken(name, special=True, normalized=False) for name in specials])
    # Llama-3 prepends <|begin_of_text|> to every encoded text, as the real tokenizer.json does.
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", TEXT_VOCAB)]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<custom_token_7>"
    )
    wrapped.save_pretrained(str(directory))


def build_lm(directory: Path, seed: int = 0, **overrides: int) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    values = {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 8192,
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,  # as in the 3B checkpoint
        "bos_token_id": TEXT_VOCAB,
        "eos_token_id": TEXT_VOCAB + 9,
    }
    config = LlamaConfig(**{**values, **overrides})
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(str(directory))


def build_snac(directory: Path, seed: int = 0) -> None:
    from snac import SNAC

    torch.manual_seed(seed)
    model = SNAC(**SNAC_24KHZ)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(SNAC_24KHZ), encoding="utf-8")
    torch.save(model.state_dict(), directory / "pytorch_model.bin")


# vLLM's CPU attention needs head_dim 64 (16 is refused): the smallest shape it runs.
VLLM_TINY = {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 2, "num_key_value_heads": 1}


def build_all(root: Path, **lm_overrides: int) -> tuple[Path, Path]:
    """``(lm_dir, snac_dir)`` under ``root``."""
    lm, snac = root / "orpheus-tiny", root / "snac_24khz"
    build_tokenizer(lm)
    build_lm(lm, **lm_overrides)
    build_snac(snac)
    return lm, snac


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build_adapter(lm_dir: Path, directory: Path, seed: int, rank: int = 8) -> Path:
    """A PEFT LoRA adapter for the LM in ``lm_dir``, as a fine-tune ships one, with random weights.

    PEFT starts an adapter as a no-op (its B matrices zero); ``init_lora_weights=False`` draws them too,
    so the adapter changes what the model says, as a trained one does.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(lm_dir), local_files_only=True)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=LORA_TARGETS, init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(str(directory))
    return directory
