"""One hostile world for the page tests: names and texts that try to run script, put through the
real commands that write pages.

- ``data-tools prepare``: speaker folders named by payloads, transcripts carrying payloads, a
  payload as the source's tag (the EnergyCodec double and the tiny embedder, as in
  tests/data_tools/test_prepare_e2e.py);
- ``kani-adapt codec check``: a manifest (tests/codec/corpus.py) whose speakers and tags, and
  so file names, are payloads, through the tiny NanoCodec;
- ``kani-adapt eval``: an eval set whose speakers, tags and texts are payloads (tiny generator,
  codec, embedder and Whisper, as in tests/eval/test_eval_command.py);
- ``kani-adapt listen --results``: a listener named by a payload (screened out: listed by name)
  over a copy of that eval folder, and with ``--keep-all`` a ``--describe`` text that is one.

Each payload announces itself if it runs: ``alert(N)`` (a dialog) or ``window.__pwned``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

# Shapes seen in the audit: some pass Python-Markdown as raw HTML, one with a second '=' is
# escaped by it (a first test could look safe when it is not); none has '/' (a folder name).
NAMES = {
    "img": "<img src=x onerror=alert(1)>",
    "svg": "<svg onload=alert(2)>",
    "assign": "<img src=x onerror=Object.assign(window,{__pwned:3})>",
    "second =": "<img src=x onerror=window.__pwned=4>",
    "quote breakout": '"><img src=x onerror=alert(5)>',
    "details": "<details open ontoggle=alert(6)>",
    "bidi": "evil\u202egnp.exe\u2066x",
}
TEXTS = {  # transcripts and free text may hold '/'
    "script": "<script>alert(7)</script> the little boat",
    "attribute": "'\"><svg onload=alert(8)> rain tomorrow",
    "link": "[click](javascript:alert(9)) please close the window",
}
LISTENER = "<img src=x onerror=alert(10)>\u202e"
DESCRIPTION = "<img src=x onerror=window.__pwned=11> English <svg onload=alert(12)>"
HOSTILE_TAG = "<svg onload=alert(13)>"


def _speakers() -> list[str]:
    return [NAMES["img"], NAMES["svg"], NAMES["assign"], NAMES["second ="],
            NAMES["quote breakout"], NAMES["details"], NAMES["bidi"]]


def prepared(root: Path) -> Path:
    """``data-tools prepare`` over speaker folders named by payloads; the dataset folder."""
    from data_tools.cli import main
    from tests.data_tools.dt_helpers import EnergyCodec, good_clip
    from tests.helpers import substitute_codec, tiny_embedder_folder

    root = root / "prepare"
    recordings = root / "recordings"
    texts = list(TEXTS.values())
    for k, speaker in enumerate(_speakers()):
        for i in range(2):
            path = good_clip(recordings / speaker / f"c{i}.wav", k + i, voice=("en", "en-us")[k % 2])
            if i == 1:  # the second clip of some speakers says what a payload says
                path.with_suffix(".txt").write_text(texts[k % len(texts)], encoding="utf-8")
    (recordings / NAMES["img"] / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (recordings / NAMES["img"] / "broken.txt").write_text(TEXTS["script"], encoding="utf-8")
    tiny_embedder_folder(root / "embedder")
    config = root / "data.yaml"
    config.write_text(json.dumps({
        "work": "work", "max_rejected_fraction": 0.9,
        "ingest": {"sources": [{"path": "recordings", "name": "synth", "tag": HOSTILE_TAG}]},
        "align": {"enabled": False}, "transcribe": {"enabled": False},
        "embed": {"model": str(root / "embedder"), "batch_size": 4},
        "tokenize": {"codec": "test-energy", "batch_seconds": 12}}))
    with pytest.MonkeyPatch.context() as mp:
        substitute_codec(mp, EnergyCodec())
        assert main(["prepare", str(config)]) == 0
    return root / "work" / "dataset"


def codec_checked(root: Path, nemo: Path) -> Path:
    """``kani-adapt codec check`` of a manifest whose speakers and tags are payloads."""
    from kani_adapt.cli.main import main
    from tests.codec.corpus import write_corpus

    speakers = _speakers()[:4] + [NAMES["bidi"]]
    manifest = write_corpus(root / "corpus", speakers=tuple(speakers), clips_per_speaker=1,
                            tags=(HOSTILE_TAG, NAMES["details"]))
    out = root / "codec"
    assert main(["codec", "check", "--codec", str(nemo), "--manifest", str(manifest),
                 "--out", str(out), "--max-clips", str(len(speakers))]) == 0
    return out


def evaluated(root: Path, generator: Path, whisper: Path) -> Path:
    """``kani-adapt eval`` over items whose speakers, tags and texts are payloads."""
    from kani_adapt.cli.main import main
    from tests.helpers import tiny_embedder_folder
    from tests.scorers.speech import speak

    root = root / "evaluate"
    folder = root / "set"
    folder.mkdir(parents=True)
    lines = []
    plan = [(NAMES["img"], "en", "the bus leaves at nine"),
            (NAMES["second ="], HOSTILE_TAG, TEXTS["script"]),
            (NAMES["bidi"], "en", TEXTS["attribute"]),
            (NAMES["quote breakout"], NAMES["details"], TEXTS["link"])]
    for k, (speaker, tag, text) in enumerate(plan):
        # the recording says the item's text: it is the hidden reference of listening trials
        speak(text, folder, ("en+f3", "en+m3")[k % 2], f"ref{k}")
        lines.append(json.dumps({"id": f"item-{k}", "text": text, "speaker": speaker, "tag": tag,
                                 "reference": f"ref{k}.wav", "reference_text": text}))
    (folder / "set.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    tiny_embedder_folder(root / "embedder")
    config = root / "eval.yaml"  # the hostile tags are English to Whisper
    config.write_text(json.dumps({"tags": {HOSTILE_TAG: {"language": "en"},
                                            NAMES["details"]: {"language": "en"}}}))
    other = Path(shutil.copytree(generator, root / "other"))  # two systems for AB trials
    out = root / "eval"
    assert main(["eval", str(generator), "codec=tiny", "sampling.max_frames=6", "batch_size=4",
                 "resamples=50", "device=cpu", f"scorers.speaker_embedder={root / 'embedder'}",
                 f"scorers.asr={whisper}", "scorers.dnsmos=false",
                 "--compare", str(other), "--set", str(folder / "set.jsonl"), "--config", str(config), "--out", str(out)]) == 0
    return out


def _answer_carelessly(port: int, tok: str, request) -> None:
    """No preference in every AB trial (the attention checks fail), accent 4."""
    status, state = request(port, "GET", f"/l/{tok}/state")
    while state["trial"]:
        trial = state["trial"]
        answer = "none" if trial["design"] == "ab" else 4
        status, state = request(port, "POST", f"/l/{tok}/answer",
                                {"trial": trial["id"], "answer": answer, "elapsed_ms": 900})
        assert status == 200, state


def listened(eval_dir: Path, root: Path) -> tuple[Path, Path]:
    """Two copies of the eval folder after ``listen --results``: one naming the screened-out
    listener, one ``--keep-all`` with a ``--describe`` text."""
    from kani_adapt.cli.main import main
    from kani_adapt.listen.design import PlanSettings
    from tests.listen.served import request, serving, token

    named = Path(shutil.copytree(eval_dir, root / "listen-named"))
    settings = PlanSettings(designs=("ab", "accent"))
    with serving(named, listeners=(LISTENER,), settings=settings) as (app, port):
        _answer_carelessly(port, token(app, LISTENER), request)
    described = Path(shutil.copytree(named, root / "listen-described"))
    assert main(["listen", str(named), "--results", "--resamples", "50"]) == 0
    assert main(["listen", str(described), "--results", "--resamples", "50", "--keep-all",
                 "--describe", f"en={DESCRIPTION}"]) == 0
    return named, described
