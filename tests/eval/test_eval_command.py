"""`kani-adapt eval` end to end on tiny models: generator, codec, speaker embedder, Whisper."""
import json
import re
from pathlib import Path

import pytest

from kani_adapt.cli.main import main
from kani_adapt.eval.probes import PROBES
from tests.scorers.speech import speak

SENTENCES = ["the bus leaves at nine", "it is a lovely day", "we are going to the shops"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from tests.helpers import tiny_embedder_folder

    root = tmp_path_factory.mktemp("models")
    for name, seed in (("adapted", 0), ("base", 1)):
        assert main(["init", "--size", "tiny", "--out", str(root / name), "--seed", str(seed),
                     "--dtype", "fp32"]) == 0
    tiny_embedder_folder(root / "embedder")
    return root


def _eval_set(folder: Path) -> Path:
    lines = []
    # Voices the tiny speaker embedder tells apart on these short, trimmed clips (with en+f3
    # and en+m3 its same-speaker ceiling fell below the different-speaker floor, and
    # similarity_norm is then rightly left empty: tests/eval/test_protocol.py)
    for s, (speaker, voice) in enumerate((("anna", "en+f4"), ("ben", "en+m4"))):
        for k in range(2):
            speak(SENTENCES[k], folder, voice, f"{speaker}{k}")
        for k, text in enumerate(SENTENCES[:2] if s == 0 else SENTENCES[2:]):
            lines.append(json.dumps({"id": f"{speaker}-{k}", "text": text, "speaker": speaker,
                                     "tag": "en", "reference": f"{speaker}{k}.wav",
                                     "reference_text": SENTENCES[k], "base": speaker == "ben"}))
    path = folder / "set.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_eval_compares_two_checkpoints_and_writes_every_output(models, tiny_whisper, tmp_path, capsys):
    import pandas as pd

    import numpy as np
    import soundfile as sf

    eval_set = _eval_set(tmp_path)
    speech, rate = sf.read(tmp_path / "anna0.wav", dtype="float32")  # a recording with long
    silence = np.zeros(rate, np.float32)  # pauses either side, and quieter: the anchor row
    sf.write(tmp_path / "anna0.wav", np.concatenate([silence, 0.3 * speech, silence]), rate)
    out = tmp_path / "out"
    code = main(["eval", str(models / "adapted"), "codec=tiny", "sampling.max_frames=6", "batch_size=2", "resamples=200",
                 "device=cpu", f"scorers.speaker_embedder={models / 'embedder'}",
                 f"scorers.asr={tiny_whisper}", "scorers.dnsmos_threads=1",
                 "--compare", str(models / "base"), "--set", str(eval_set), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    verdicts = [line for line in printed.splitlines() if line.startswith(("adapted:", "base:"))]
    assert len(verdicts) == 2 and "vs base" in verdicts[0]

    every = pd.read_parquet(out / "utterances.parquet")
    # the built-in short probes of the set's language, in the first speaker's voice, kept apart
    probes = every[every["item"].str.startswith("probe/")]
    df = every.drop(probes.index)
    assert sorted(probes[probes.checkpoint == "adapted"].text) == sorted(PROBES["en"])
    assert set(probes.checkpoint) == {"adapted", "base"} and set(probes.speaker) == {"anna"}
    assert probes["failure"].notna().all() and probes["cer"].notna().all()
    assert set(df.checkpoint) == {"adapted", "base", "codec_roundtrip", "recordings"}
    assert len(df[df.checkpoint == "adapted"]) == 3 and len(df[df.checkpoint == "codec_roundtrip"]) == 3  # distinct references
    # the human anchor: the recordings themselves, scored against their own transcripts
    rec = df[df.checkpoint == "recordings"].sort_values("item")
    assert len(rec) == 3 and rec["cer"].notna().all() and rec["similarity"].notna().all()
    # scores the speech, trimmed of the recording's pauses (the file is 2 s longer)
    assert float(rec.set_index("item").loc["anna0", "duration_s"]) < len(speech) / rate + 0.5
    assert not (rec["duration_s"].to_numpy() == df[df.checkpoint == "codec_roundtrip"]
                .sort_values("item")["duration_s"].to_numpy()).all() or \
        not (rec["dnsmos_p808"].to_numpy() == df[df.checkpoint == "codec_roundtrip"]
             .sort_values("item")["dnsmos_p808"].to_numpy()).all()  # not the round trip again
    assert df["similarity_norm"].notna().any()
    for column in ("cer", "wer", "similarity", "dnsmos_p808", "failure", "asr_avg_logprob", "lang_prob"):
        assert df[df.checkpoint == "adapted"][column].notna().all(), column
    # 6 frames at most: every generation either ended or hit the cap, which is flagged
    gen = df[~df.checkpoint.isin(["codec_roundtrip", "recordings"])]
    assert (gen.duration_s <= 6 * 1764 / 22050 + 1e-6).all()

    result = json.loads((out / "eval.json").read_text())
    short = result["short_probes"]["by_checkpoint"]
    assert short["adapted"]["en"]["n"] == len(PROBES["en"]) and not result["short_probes"]["without"]
    assert short["adapted"]["en"]["failure"] == pytest.approx(
        probes[probes.checkpoint == "adapted"]["failure"].mean())
    assert sum(v["n"] for v in result["prompt_length"]["adapted"]["en"].values()) == 3 + len(PROBES["en"])
    assert set(result["anchors"]["similarity"]) == {"ceiling", "floor"}
    comp = result["comparisons"]["adapted vs base"]
    assert "dnsmos_p808" in comp["all"] and "cer" in comp["forgetting"]
    # paired differences are computed from the same utterances as the per-utterance table
    a = df[df.checkpoint == "adapted"].set_index("item")["dnsmos_p808"]
    b = df[df.checkpoint == "base"].set_index("item")["dnsmos_p808"]
    assert comp["all"]["dnsmos_p808"]["diff"]["mean"] == pytest.approx(float((a - b.loc[a.index]).mean()))
    assert len(result["verdicts"]) == 2 and "vs recordings" in result["verdicts"][0]
    adapted = df[df.checkpoint == "adapted"]
    assert result["summary"]["adapted"]["corpus_cer"]["all"]["mean"] == pytest.approx(
        adapted["char_edits"].sum() / adapted["ref_chars"].sum())
    assert "recordings" in result["summary"] and "catastrophic" in result["summary"]["adapted"]
    md = (out / "eval.md").read_text()
    print(md)
    assert "## Verdict" in md and "forgetting" in md and "## Short probes" in md
    assert len(list((out / "wavs" / "adapted").rglob("*.wav"))) == 3 + len(PROBES["en"])
    assert list((out / "wavs" / "codec_roundtrip").glob("*.wav"))
    # the reference files as listeners hear them, every row naming its reference, and the page
    assert sorted(p.stem for p in (out / "wavs" / "recording").glob("*.wav")) == ["anna0", "anna1", "ben0"]
    assert set(df[df.checkpoint == "adapted"].reference) == {"anna0", "anna1", "ben0"}
    page = (out / "index.html").read_text()
    sources = re.findall(r'<audio controls preload="metadata" src="([^"]+)"', page)
    # each item: adapted, base, its recording, its round trip; each probe: adapted, base
    assert len(sources) == 3 * 4 + 2 * len(PROBES["en"]) and all((out / s).is_file() for s in sources)
    assert "## Verdict" not in page and "<h2>Verdict</h2>" in page  # eval.md rendered on top
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    # what every clip was made of: its codes (as many frames as its row, the wav their decoding)
    # and the voice it was given, the same for both checkpoints
    from kani_adapt.eval import spoken

    made = spoken.read(out)
    assert set(made) == {(r.checkpoint, r.item, r.sample) for r in gen.itertuples()} | {
        (r.checkpoint, r.item, r.sample) for r in probes.itertuples()}
    for r in gen.itertuples():
        clip = made[(r.checkpoint, r.item, r.sample)]
        assert len(clip.codes) == r.frames and clip.codes.shape[1] == 4 and (not clip.truncated or r.frames == 6)
        wav, _ = sf.read(out / "wavs" / r.checkpoint / f"{r.item}_s{r.sample}.wav")
        assert len(wav) == r.frames * 1764
        twin = made[("base" if r.checkpoint == "adapted" else "adapted", r.item, r.sample)]
        assert np.array_equal(clip.speaker_emb, twin.speaker_emb) and clip.speaker_emb.shape == (128,)


def test_eval_rejects_a_bad_eval_set_with_one_line(models, tiny_whisper, tmp_path, capsys):
    ready = ["codec=tiny", "device=cpu", f"scorers.speaker_embedder={models / 'embedder'}",
             f"scorers.asr={tiny_whisper}"]  # models the preflight finds, so the set is read
    bad = tmp_path / "set.jsonl"
    bad.write_text(json.dumps({"text": "hi", "speaker": "a", "reference": "missing.wav"}) + "\n")
    assert main(["eval", str(models / "adapted"), *ready, "--set", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "missing.wav does not exist" in err and len(err.strip().splitlines()) == 1
    bad.write_text(json.dumps({"text": "hi", "speakr": "a"}) + "\n")
    assert main(["eval", str(models / "adapted"), *ready, "--set", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "unknown keys ['speakr']" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_on_dataset_held_out_speakers_and_replay_marks_base_items(models, tmp_path):
    import pandas as pd

    from kani_adapt.training.synthetic import synthetic_dataset

    data = synthetic_dataset(tmp_path / "data", n_speakers=3, per_speaker=3)
    replay = synthetic_dataset(tmp_path / "replay", n_speakers=2, per_speaker=2, seed=5)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    from kani_adapt import dataset

    held = sorted(set(dataset.speakers(dataset.read(data))))[:1]
    (run_dir / "data_stats.json").write_text(json.dumps({"val_speakers": held}))
    out = tmp_path / "out"
    assert main(["eval", str(models / "adapted"), "codec=tiny", "sampling.max_frames=4", "resamples=100",
                 "device=cpu", "scorers.dnsmos=false", f"dataset.from_run={run_dir}",
                 "dataset.per_speaker=2", f"dataset.replay={replay}", "dataset.replay_speakers=1",
                 "dataset.replay_per_speaker=2", "--set", str(data), "--out", str(out)]) == 0
    df = pd.read_parquet(out / "utterances.parquet")
    probe = df["item"].str.startswith("probe/")
    gen = df[(df.checkpoint == "adapted") & ~probe]
    # probes for the tag of the eval set's own rows (not for the replayed base rows)
    assert len(df[probe]) == 6 and not df[probe].base.any() and df[probe].conditioned.all()
    assert len(gen) == 4 and set(gen[~gen.base].speaker) == set(held) and gen.base.sum() == 2
    assert gen.conditioned.all()  # dataset speaker embeddings condition the voice
    assert len(df[df.checkpoint == "codec_roundtrip"]) == 4  # the recordings, decoded
