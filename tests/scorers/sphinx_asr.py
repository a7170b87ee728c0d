"""pocketsphinx as a real offline English recogniser for tests of the CER/WER pipeline.

A test double, not a fair intelligibility measure: its language model is built from the very
sentences being tested (``pocketsphinx.lm.ArpaBoLM``), because its default model recognises
almost nothing of espeak-ng speech. A fresh decoder per clip (no adaptation carried over) and a
little dither, as measured in the environment notes.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

RATE = 16000


def sentence_lm(sentences: list[str], folder: Path) -> Path:
    """An ARPA trigram model of the sentences, and beside it the dictionary of their words only
    (loading the whole 130k-word dictionary for every fresh decoder costs seconds)."""
    from pocketsphinx import get_model_path
    from pocketsphinx.lm import ArpaBoLM

    words = {w for s in sentences for w in s.lower().split()}
    full = Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"
    entries = [line for line in full.read_text().splitlines()
               if line.split(" ", 1)[0].split("(")[0] in words]
    (Path(folder) / "sentences.dict").write_text("\n".join(entries) + "\n")

    lm = ArpaBoLM(text="\n".join(s.lower() for s in sentences), case="lower", add_start=True)
    lm.compute()
    path = Path(folder) / "sentences.arpa"
    with open(path, "w") as out:
        lm.write(out)
    return path


def recognise(audio16k: np.ndarray, lm_path: Path) -> str:
    from pocketsphinx import Config, Decoder, get_model_path, set_loglevel

    set_loglevel("FATAL")
    model = Path(get_model_path()) / "en-us"
    config = Config(hmm=str(model / "en-us"), lm=str(lm_path), dict=str(lm_path.with_suffix(".dict")),
                    samprate=RATE)
    decoder = Decoder(config)
    # Light dither: espeak-ng's exact digital silence otherwise upsets the feature normalisation.
    dither = 1e-3 * np.random.default_rng(0).standard_normal(len(audio16k))
    pcm = (np.clip(audio16k + dither, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""
