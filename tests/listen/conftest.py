"""Eval folders for the listening tests.

``synthetic_eval`` writes an eval folder the way ``run_eval`` does (its own writers for
utterances.parquet, eval.json, eval.md and index.html, the same wavs/ layout), with espeak-ng
speech standing in for the generations so that listeners would hear a difference: the recording
is clean speech, the codec round trip low-passed speech, "adapted" speech with light noise and
"base" speech with heavy noise, 12 dB quieter (loudness matching has something to do). The real
``kani-adapt eval`` writes the same layout (tests/eval/test_eval_command.py checks it).
"""
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.scorers.speech import speak, with_noise

SENTENCES = {"en": ["the bus leaves at nine", "it is a lovely day"],
             "de": ["guten morgen wie geht es", "der zug fährt gleich ab"]}
SPEAKERS = (("anna", "en+f3", "en"), ("bernd", "de+m3", "de"))
RATE = 22050


def _clips(root: Path) -> list[dict]:
    from kani_adapt.audio import read
    from kani_adapt.listen.playback import low_anchor

    out = []
    for speaker, voice, tag in SPEAKERS:
        for k, text in enumerate(SENTENCES[tag]):
            speak(text, root, voice, f"{speaker}{k}")
            clean = read(root / f"{speaker}{k}.wav", RATE).audio
            out.append({"id": f"{speaker}-{k}", "ref": f"{speaker}{k}", "speaker": speaker, "tag": tag,
                        "text": text, "recording": clean,
                        "codec_roundtrip": low_anchor(clean, RATE, 5000.0),
                        "adapted": with_noise(clean, 25, seed=k),
                        "base": with_noise(clean, 0, seed=k + 7) * 0.25})
    return out


# The automatic judges' figures of a judged synthetic eval: by system, nudged per item (the
# listening tests set them against the listeners' accent ratings)
JUDGED = {"recording": 0.9, "codec_roundtrip": 0.6, "adapted": 0.7, "base": 0.1}


def judge_columns(system: str, k: int) -> dict:
    posterior = JUDGED[system] - 0.05 * k
    return dict(accent_posterior=posterior, accent_shift=posterior - 0.5, per=1 - posterior,
                cer=0.5 * (1 - posterior) + 0.01 * k)


def _spoken(clips: list[dict]) -> list:
    """What run_eval keeps of each generated clip (codes.parquet): codes the length of the clip
    (12.5 frames per second), distinct per system and item, and the item's voice, the same for
    both systems except on the last item, where "base" was given another voice."""
    from kani_adapt import tokens
    from kani_adapt.eval.spoken import Spoken

    rng, out = np.random.default_rng(5), []
    for n, clip in enumerate(clips):
        voice = rng.normal(size=128).astype(np.float32)
        frames = max(1, round(len(clip["recording"]) / RATE * tokens.FRAMES_PER_SECOND))
        for system in ("adapted", "base"):
            given = rng.normal(size=128).astype(np.float32) if system == "base" and n == len(clips) - 1 else voice
            out.append(Spoken(system, clip["id"], 0, rng.integers(0, tokens.CODEBOOK_SIZE, (frames, 4)),
                              False, given))
    return out


def synthetic_eval(root: Path, tags: dict | None = None, judges: bool = False, codes: bool = False) -> Path:
    import pandas as pd

    from kani_adapt.core.atomic import write_audio, write_file
    from kani_adapt.eval import page, report
    from kani_adapt.eval.page import wav_path
    from kani_adapt.text.tags import Tag, facts

    root.mkdir(parents=True, exist_ok=True)
    out = root / "eval"
    rows, clips = [], _clips(root)
    for n, clip in enumerate(clips):
        meta = dict(speaker=clip["speaker"], tag=clip["tag"], base=False, text=clip["text"],
                    reference=clip["ref"], failure=0.0, failure_reasons="")
        judged = (lambda system: judge_columns(system, n)) if judges else (lambda system: {})
        for system in ("recording", "codec_roundtrip"):
            write_audio(wav_path(out, system, clip["ref"]), np.clip(clip[system], -1, 1), RATE)
        rows.append(dict(meta, checkpoint="codec_roundtrip", item=clip["ref"], sample=0,
                         **judged("codec_roundtrip")))
        if judges:
            rows.append(dict(meta, checkpoint="recordings", item=clip["ref"], sample=0,
                             **judged("recording")))
        for system in ("adapted", "base"):
            write_audio(wav_path(out, system, clip["id"], 0), np.clip(clip[system], -1, 1), RATE)
            rows.append(dict(meta, checkpoint=system, item=clip["id"], sample=0, **judged(system)))
    df = pd.DataFrame(rows)
    result = {"eval_set": "synthetic", "items": 4, "samples": 1, "codec": "none",
              "checkpoints": {"adapted": str(root / "adapted"), "base": str(root / "base")},
              "metrics": ["failure"], "anchors": {}, "summary": report.summarise(df, ["failure"], 50),
              "comparisons": {}, "verdicts": [],  # each tag's facts, as run_eval keeps them
              "tags": facts(set(df["tag"]), {t: Tag(description=d) for t, d in (tags or {}).items()})}
    write_file(out / "utterances.parquet", lambda tmp: df.to_parquet(tmp, index=False))
    if codes:
        from kani_adapt.eval import spoken

        spoken.write(out, _spoken(clips))
    report.write_json(out / "eval.json", result)
    report.write_markdown(out / "eval.md", result)
    page.write_index(out)
    return out


@pytest.fixture(scope="session")
def eval_master(tmp_path_factory):
    return synthetic_eval(tmp_path_factory.mktemp("listen-eval"),
                          {"en": "English as spoken in England", "de": "standard German"})


@pytest.fixture(scope="session")
def judged_master(tmp_path_factory):
    return synthetic_eval(tmp_path_factory.mktemp("listen-judged"),
                          {"en": "English as spoken in England", "de": "standard German"}, judges=True)


@pytest.fixture
def judged_dir(judged_master, tmp_path):
    return Path(shutil.copytree(judged_master, tmp_path / "eval"))


@pytest.fixture
def eval_dir(eval_master, tmp_path):
    """A fresh copy per test (the listening store lives in the eval folder)."""
    return Path(shutil.copytree(eval_master, tmp_path / "eval"))
