"""Tiny CTC recognisers saved in transformers' layout with the publisher's classes: a phoneme
recogniser like facebook/wav2vec2-xlsr-53-espeak-cv-ft (``Wav2Vec2PhonemeCTCTokenizer`` over
espeak IPA phones) and a character recogniser like MMS (``Wav2Vec2CTCTokenizer``, ``|`` between
words). Random weights: what they hear is noise; the loading, batching and scoring code is what
runs for real."""
from __future__ import annotations

import json
from pathlib import Path

# espeak IPA phones of English and German (what the real model's vocabulary holds, in part)
PHONES = ["a", "b", "d", "e", "f", "h", "i", "j", "k", "l", "m", "n", "o", "p", "s", "t", "u",
          "v", "w", "z", "æ", "ð", "ŋ", "ɑ", "ɑː", "ɔ", "ɔː", "ə", "ɛ", "ɜ", "ɪ", "ɹ", "ʃ", "ʊ", "ʌ",
          "θ", "aɪ", "aʊ", "eɪ", "oʊ", "əʊ", "iː", "uː", "ɡ", "ç", "x", "ʁ", "ɐ", "r"]
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
# wav2vec2-large (XLS-R 53's shape) for benchmarks: real sizes, random weights
LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
             feat_extract_norm="layer", do_stable_layer_norm=True, ctc_loss_reduction="mean")
CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
              conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4),
              num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
              feat_extract_norm="layer", do_stable_layer_norm=True, ctc_loss_reduction="mean")


def _save(folder: Path, tokenizer, vocab_size: int, pad_id: int, seed: int, large: bool = False) -> Path:
    import torch
    from transformers import (Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC,
                              Wav2Vec2Processor)

    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=True)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(**(LARGE if large else CONFIG), vocab_size=vocab_size,
                                          pad_token_id=pad_id))
    model.eval().save_pretrained(folder)
    return folder


def phoneme_recogniser(folder: Path, seed: int = 0, large: bool = False) -> Path:
    from transformers import Wav2Vec2PhonemeCTCTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(SPECIALS + PHONES)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tok = Wav2Vec2PhonemeCTCTokenizer(str(folder / "vocab.json"), do_phonemize=False,
                                      phonemizer_lang="en-us")
    return _save(folder, tok, len(vocab), vocab["<pad>"], seed, large)


def character_recogniser(folder: Path, seed: int = 1, large: bool = False) -> Path:
    from transformers import Wav2Vec2CTCTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(SPECIALS + ["|", *"abcdefghijklmnopqrstuvwxyz'"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|")
    return _save(folder, tok, len(vocab), vocab["<pad>"], seed, large)
