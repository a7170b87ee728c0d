"""A small multi-speaker corpus spoken by espeak-ng: audio + .txt sidecars per speaker folder."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.core import espeak
from kani_adapt.core.atomic import write_file, write_text
from kani_adapt.core.console import progress
from kani_adapt.core.errors import ConfigError


def synthesize(cfg, out: Path) -> Path:
    """Write ``out/<tag>/<speaker>/<speaker>_<i>.wav`` and ``.txt`` for every voice and sentence of its
    tag. Existing files are kept (a re-run only fills gaps)."""
    espeak.require()
    jobs = []
    for voice in cfg.voices:
        sentences = cfg.sentences.get(voice.tag) or []
        if not sentences:
            raise ConfigError(f"synth.sentences has no sentences for tag {voice.tag!r}")
        for i, text in enumerate(sentences):
            jobs.append((voice, i, text))
    for voice, i, text in progress(jobs, desc="espeak-ng", unit="clip"):
        folder = out / voice.tag / voice.speaker
        folder.mkdir(parents=True, exist_ok=True)
        wav = folder / f"{voice.speaker}_{i:03d}.wav"
        if wav.exists() and (folder / f"{wav.stem}.txt").exists():
            continue
        write_file(wav, lambda tmp: espeak.write(text, voice.voice, tmp))
        write_text(folder / f"{wav.stem}.txt", text + "\n")
    return out

