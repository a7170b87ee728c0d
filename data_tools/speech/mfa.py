"""Montreal Forced Aligner plumbing: corpus writing, command lines, TextGrid reading.

MFA is driven as a subprocess with its own ``MFA_ROOT_DIR`` (it keeps module-global state and
writes there). Its supported install is conda-forge; PyPI's package cannot import without Kaldi.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kani_adapt.audio import read_clip, resample, write_clip
from data_tools.records import Utterance
from kani_adapt.core import atomic
from kani_adapt.core.errors import DataError

MFA_RATE = 16000
INSTALL_HINT = "conda install -c conda-forge montreal-forced-aligner"


@dataclass
class Word:
    start: float
    end: float
    text: str


def find_mfa(command: str = "mfa") -> str | None:
    return shutil.which(command)


def require_mfa(command: str = "mfa") -> str:
    path = find_mfa(command)
    if path is None:
        raise DataError(f"align: Montreal Forced Aligner ('{command}') is not installed; install "
                        f"it with `{INSTALL_HINT}`, or set align.enabled: off")
    return path


def words_of(text: str) -> list[str]:
    """Transcript words as MFA sees them: lower case, punctuation stripped."""
    return [w for w in (re.sub(r"[^\w'-]", "", t).lower() for t in text.split()) if w]


def corpus_name(utt_id: str) -> str:
    return utt_id.replace("/", "__")


def write_corpus(utts: list[Utterance], work: Path, corpus: Path) -> dict[str, str]:
    """``corpus/<speaker>/<name>.wav`` (16 kHz mono) + ``.lab``; returns {name: utterance id}."""
    names = {}
    for utt in utts:
        name = corpus_name(utt.id)
        audio, rate = read_clip(work / utt.audio)
        folder = corpus / re.sub(r"[^\w.-]", "_", utt.speaker)
        write_clip(folder / f"{name}.wav", resample(audio, rate, MFA_RATE), MFA_RATE)
        atomic.write_text(folder / f"{name}.lab", " ".join(words_of(utt.text)) + "\n")
        names[name] = utt.id
    atomic.write_json(corpus.parent / "names.json", names, indent=1)
    return names


def grapheme_dictionary(texts: list[str]) -> str:
    """One pronunciation per word, spelled letter by letter: a start for a language with no
    lexicon (MFA learns what each letter sounds like from the corpus)."""
    words = sorted({w for t in texts for w in words_of(t)})
    return "".join(f"{w}\t{' '.join(c for c in w if c.isalnum())}\n" for w in words
                   if any(c.isalnum() for c in w))


def commands(mfa: str, corpus: Path, dictionary: Path, model: Path, out: Path,
             train: bool, num_jobs: int, train_config: str = "") -> list[list[str]]:
    """validate, train (when no acoustic model is given), align."""
    jobs = ["--num_jobs", str(num_jobs), "--clean"]
    steps = [[mfa, "validate", str(corpus), str(dictionary), *jobs]]
    if train:
        extra = ["--config_path", train_config] if train_config else []
        steps.append([mfa, "train", str(corpus), str(dictionary), str(model), *jobs, *extra])
    steps.append([mfa, "align", str(corpus), str(dictionary), str(model), str(out), *jobs])
    return steps


def run_commands(steps: list[list[str]], root: Path, log: Path) -> None:
    env = {**os.environ, "MFA_ROOT_DIR": str(root)}  # one MFA state folder per job
    root.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as out:
        for argv in steps:
            out.write("$ " + " ".join(argv) + "\n")
            out.flush()
            done = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                raise DataError(f"align: `mfa {argv[1]}` failed (exit {done.returncode}); see {log}")


def read_words(textgrid: Path) -> list[Word]:
    """The non-empty intervals of the ``words`` tier."""
    from praatio import textgrid as tg

    grid = tg.openTextgrid(str(textgrid), includeEmptyIntervals=False)
    if "words" not in grid.tierNames:
        raise DataError(f"{textgrid} has no 'words' tier")
    return [Word(float(s), float(e), str(label)) for s, e, label in grid.getTier("words").entries
            if str(label).strip() and str(label) not in ("<eps>", "sil", "sp", "spn")]


def textgrids(out: Path) -> dict[str, Path]:
    return {p.stem: p for p in Path(out).rglob("*.TextGrid")}
