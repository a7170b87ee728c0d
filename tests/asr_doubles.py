"""Real offline recognisers standing in for the pipeline's models in tests.

pocketsphinx 5 stands in for Whisper: the en-us acoustic model from its wheel and a language model
built in-process from the sentences the test expects to hear (``sentence_lm``, so it recognises
them reliably without any download). A test double, not a fair intelligibility measure: its
default model recognises almost nothing of espeak-ng speech. A fresh decoder per clip (a reused
one carries adaptation state over) and a little dither (espeak-ng's exact digital silence
otherwise upsets the feature normalisation). silero-vad gives speech spans (its model ships
inside the wheel)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

RATE = 16000
FRAMES_PER_SECOND = 100  # pocketsphinx's frame rate: seg() times are frame numbers
_FILLERS = re.compile(r"^(<s>|</s>|<sil>|\[NOISE\]|\+\+.*\+\+)$")


def sentence_lm(sentences: list[str], folder: Path) -> Path:
    """An ARPA trigram model of the sentences (``folder/sentences.arpa``), and beside it the
    dictionary of their words only (``sentences.dict``: loading the whole 130k-word dictionary
    for every fresh decoder costs seconds). Punctuation is dropped, text lower-cased."""
    from pocketsphinx import get_model_path
    from pocketsphinx.lm import ArpaBoLM

    lines = [re.sub(r"[^\w' ]", " ", s.lower()) for s in sentences]
    words = {w for line in lines for w in line.split()}
    full = Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"
    entries = [line for line in full.read_text().splitlines()
               if line.split(" ", 1)[0].split("(")[0] in words]
    (Path(folder) / "sentences.dict").write_text("\n".join(entries) + "\n")
    lm = ArpaBoLM(text="\n".join(lines) + "\n", add_start=True)  # <s> and </s>: the decoder needs them
    lm.compute()
    path = Path(folder) / "sentences.arpa"
    with open(path, "w") as out:
        lm.write(out)
    return path


def recognise(audio16k: np.ndarray, lm_path: Path) -> str:
    """The transcript of 16 kHz float audio under the model ``sentence_lm`` wrote."""
    from pocketsphinx import Config, Decoder, get_model_path, set_loglevel

    set_loglevel("FATAL")
    model = Path(get_model_path()) / "en-us"
    config = Config(hmm=str(model / "en-us"), lm=str(lm_path), dict=str(lm_path.with_suffix(".dict")),
                    samprate=RATE)
    decoder = Decoder(config)
    dither = 1e-3 * np.random.default_rng(0).standard_normal(len(audio16k))
    pcm = (np.clip(audio16k + dither, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def pocketsphinx_words(audio16k: np.ndarray, sentences: list[str], tmp_dir,
                       dither: float = 1e-3) -> list[tuple[str, float, float]]:
    """``[(word, start_s, end_s)]`` for 16 kHz float audio; a fresh decoder per call
    (a reused one carries adaptation state from the previous file)."""
    from pocketsphinx import Decoder

    lm_path = sentence_lm(sentences, tmp_dir)
    rng = np.random.default_rng(0)
    noisy = audio16k + rng.standard_normal(len(audio16k)).astype(np.float32) * dither
    pcm = (np.clip(noisy, -1, 1) * 32767).astype("<i2").tobytes()
    decoder = Decoder(lm=str(lm_path), dict=str(lm_path.with_suffix(".dict")), samprate=RATE,
                      loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    words = []
    for seg in decoder.seg():
        if _FILLERS.match(seg.word):
            continue
        word = re.sub(r"\(\d+\)$", "", seg.word)  # alternative pronunciations: "the(2)"
        words.append((word, seg.start_frame / FRAMES_PER_SECOND,
                      (seg.end_frame + 1) / FRAMES_PER_SECOND))
    return words


def silero_speech_spans(audio16k: np.ndarray,
                        min_silence_s: float = 0.1) -> list[tuple[float, float]]:
    """Speech spans in seconds; torch's thread count is left as it was found."""
    import torch

    threads = torch.get_num_threads()
    from silero_vad import get_speech_timestamps, load_silero_vad  # its import sets 1 thread

    try:
        torch.set_num_threads(1)  # 512-sample windows: more threads only contend
        stamps = get_speech_timestamps(torch.from_numpy(audio16k.astype(np.float32)),
                                       load_silero_vad(), sampling_rate=RATE, speech_pad_ms=0,
                                       min_silence_duration_ms=int(min_silence_s * 1000))
    finally:
        torch.set_num_threads(threads)
    return [(s["start"] / RATE, s["end"] / RATE) for s in stamps]
