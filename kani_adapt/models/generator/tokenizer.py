"""Tokenizers: a small offline LFM2-style text tokenizer, and KaniTTS2's added tokens.

The offline tokenizer is byte-level BPE without merges (every UTF-8 byte is one token) laid out
like LFM2's: ``<|pad|>`` 0, ``<|startoftext|>`` 1 (prepended as BOS), ``<|endoftext|>`` 2, and
exactly 64400 text ids, the unused ones reserved. Real runs use the LFM2 tokenizer instead.
"""
from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from kani_adapt import tokens
from kani_adapt.core.errors import CheckpointError, DataError

SPECIALS = ["<|pad|>", "<|startoftext|>", "<|endoftext|>"]


def build_offline_text_tokenizer() -> PreTrainedTokenizerFast:
    byte_chars = list(pre_tokenizers.ByteLevel.alphabet())
    byte_chars.sort()
    vocab = {tok: i for i, tok in enumerate(SPECIALS + byte_chars)}
    for i in range(len(vocab), tokens.TEXT_VOCAB_SIZE):
        vocab[f"<|reserved_{i}|>"] = i
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A", special_tokens=[("<|startoftext|>", tokens.BOS)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=SPECIALS[1],
        eos_token=SPECIALS[2],
        pad_token=SPECIALS[0],
    )
    tok.add_special_tokens({"additional_special_tokens": []})
    return tok


def add_kani_tokens(tokenizer) -> None:
    """Add ``<custom_token_0..16137>`` (ids 64400..80537) as the official trainer does."""
    if len(tokenizer) != tokens.TEXT_VOCAB_SIZE:
        raise CheckpointError(
            f"the base tokenizer has {len(tokenizer)} tokens; KaniTTS2 needs exactly "
            f"{tokens.TEXT_VOCAB_SIZE} text tokens so that its added tokens get ids "
            f"{tokens.TEXT_VOCAB_SIZE}..{tokens.VOCAB_SIZE - 1} (use an LFM2 tokenizer)"
        )
    tokenizer.add_tokens([f"<custom_token_{i}>" for i in range(tokens.NUM_ADDED_TOKENS)])
    check_kani_tokenizer(tokenizer)


def check_kani_tokenizer(tokenizer) -> None:
    """Refuse a tokenizer whose added tokens would not line up with the KaniTTS2 ids."""
    size = len(tokenizer)
    first = tokenizer.convert_tokens_to_ids("<custom_token_0>")
    if size != tokens.VOCAB_SIZE or first != tokens.TEXT_VOCAB_SIZE:
        raise CheckpointError(
            f"tokenizer has {size} tokens with <custom_token_0> at id {first}; KaniTTS2 needs "
            f"{tokens.VOCAB_SIZE} tokens with <custom_token_0> at {tokens.TEXT_VOCAB_SIZE}"
        )


def encode_text(tokenizer, transcript: str, tag: str | None = None) -> list[int]:
    """Text ids (with one leading BOS) of ``"{tag}: {transcript}"``."""
    text = tokens.format_text(transcript, tag)
    ids = tokens.with_bos(tokenizer(text, add_special_tokens=True)["input_ids"])
    control = [i for i in ids if i >= tokens.TEXT_VOCAB_SIZE]
    if control:
        raise DataError(
            f"text {text[:60]!r} spells KaniTTS2 control/audio token(s) {control[:3]}; "
            "remove '<custom_token_N>' strings from the transcript"
        )
    return ids
