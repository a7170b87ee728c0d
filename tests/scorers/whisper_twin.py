"""A tiny random Whisper saved in the transformers layout, with a small offline vocabulary.

The real multilingual vocabulary cannot be fetched here, so a byte-level BPE is trained with
``tokenizers`` on a few sentences and given Whisper's special tokens; the model, processor and
generation config are transformers' own classes, saved and loaded through the real code.
"""
from __future__ import annotations

from pathlib import Path

LANGUAGES = ("en", "de", "sw", "fr")
SENTENCES = ["the quick brown fox jumps over the lazy dog", "guten morgen wie geht es dir",
             "habari ya asubuhi", "bonjour tout le monde", "one two three four five six seven"]


def build_tiny_whisper(folder: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor, WhisperTokenizer)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(SENTENCES, vocab_size=320, special_tokens=["<|endoftext|>"], show_progress=False)
    bpe.save_model(str(folder))
    tok = WhisperTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    specials = (["<|startoftranscript|>"] + [f"<|{c}|>" for c in LANGUAGES]
                + ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                   "<|nospeech|>", "<|notimestamps|>"])
    tok.add_special_tokens({"additional_special_tokens": specials}, replace_additional_special_tokens=False)
    ids = {t: tok.convert_tokens_to_ids(t) for t in specials}
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tok)
    processor.save_pretrained(str(folder))
    config = WhisperConfig(
        vocab_size=len(tok), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=1500, max_target_positions=24, decoder_start_token_id=ids["<|startoftranscript|>"],
        pad_token_id=eot, bos_token_id=eot, eos_token_id=eot)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=eot, pad_token_id=eot,
        bos_token_id=eot, max_length=24, is_multilingual=True,
        lang_to_id={f"<|{c}|>": ids[f"<|{c}|>"] for c in LANGUAGES},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"], suppress_tokens=[], begin_suppress_tokens=[eot])
    model.save_pretrained(str(folder))
    return folder
