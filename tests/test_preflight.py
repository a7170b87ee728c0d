"""`kani-adapt check` checks the machine and the data, not only the types: every case a new user
hit (models not on the machine, `device: cuda` without CUDA, a replay path that does not exist,
a codec path that is not a codec, a language setting that does not fit the source), each one
line of a short verdict; `run`, `train`, `generate` and `eval` refuse the same before any work."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kani_adapt.core import preflight
from kani_adapt.cli.main import main


@pytest.fixture
def no_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def recipe(tmp_path: Path, extra: str = "", data_extra: str = "", tag: str = "de") -> Path:
    """A recipe over two real clips of each of two speakers (training holds one out) whose every
    model is local or tiny: ready as written."""
    for speaker in ("anna", "bert"):
        rec = tmp_path / "rec" / speaker
        rec.mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(["Guten Morgen", "Wie geht es dir"]):
            sf.write(rec / f"a{i}.wav", np.zeros(16000, np.float32), 16000)
            (rec / f"a{i}.txt").write_text(text)
    path = tmp_path / "r.yaml"
    path.write_text(
        "codec: tiny\nspeaker_embedder: tiny\ndevice: cpu\n"
        f"data:\n  ingest:\n    sources:\n      - {{path: rec, tag: {tag}}}\n{data_extra}"
        "generator:\n  model: {init: tiny}\n" + extra)
    return path


def check(capsys, path: Path, *args) -> tuple[int, str]:
    rc = main(["check", str(path), *args])
    return rc, capsys.readouterr().out


def test_a_ready_recipe_gets_a_short_verdict_without_yaml(tmp_path, capsys):
    rc, out = check(capsys, recipe(tmp_path))
    assert rc == 0, out
    assert out.splitlines()[0].endswith(": ready")
    assert len(out.splitlines()) < 6 and "max_steps" not in out
    rc, out = check(capsys, recipe(tmp_path), "--show-config")
    assert rc == 0 and "max_steps:" in out and "#   codec_check: tiny" in out
    for args in (("--show-config", "generator.trainer.max_steps=7"),  # the trial's order
                 ("generator.trainer.max_steps=7", "--show-config")):
        rc, out = check(capsys, recipe(tmp_path), *args)
        assert rc == 0 and "max_steps: 7" in out, args


def test_models_not_on_the_machine_are_one_problem_each(tmp_path, capsys):
    rc, out = check(capsys, recipe(tmp_path), "speaker_embedder=nineninesix/speaker-emb-tbr",
                    "eval.scorers.asr=openai/whisper-large-v3")
    assert rc == 2
    problems = [line for line in out.splitlines() if line.startswith("  problem:")]
    assert len(problems) == 2, out
    assert "data.embed.model: speaker embedder nineninesix/speaker-emb-tbr is not on this " \
           "machine and HF_HUB_OFFLINE is set" in problems[0]
    assert "eval.scorers.asr: ASR model openai/whisper-large-v3" in problems[1]


def test_cuda_without_cuda_is_one_line_and_the_run_does_nothing(tmp_path, capsys, no_cuda):
    rc, out = check(capsys, recipe(tmp_path), "device=cuda")
    assert rc == 2
    assert [line for line in out.splitlines() if "problem:" in line] == [
        "  problem: device: cuda, but this torch build "
        f"({__import__('torch').__version__}) sees no CUDA GPU; set device=cpu (or auto), or "
        "install a CUDA build of torch"]  # every stage it reaches: said once
    work = tmp_path / "work"
    assert main(["run", str(recipe(tmp_path)), "device=cuda", f"work_dir={work}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: device: cuda") and "\n" not in err
    assert not work.exists()  # before any work


def test_a_replay_set_that_does_not_open_or_lacks_columns_is_a_problem(tmp_path, capsys):
    rc, out = check(capsys, recipe(tmp_path), f"generator.data.replay={tmp_path / 'nowhere'}")
    assert rc == 2 and f"generator.data.replay: {tmp_path / 'nowhere'}: no such dataset" in out
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["hallo"]}), tmp_path / "replay.parquet")
    rc, out = check(capsys, recipe(tmp_path), f"generator.data.replay={tmp_path / 'replay.parquet'}")
    assert rc == 2 and "missing column(s) nano_layer_1" in out


def test_a_codec_path_that_is_not_a_codec_is_a_problem(tmp_path, capsys):
    rc, out = check(capsys, recipe(tmp_path), "codec=../../../../../../../etc/passwd")
    assert rc == 2
    assert "codec: /etc/passwd is not a .nemo codec file" in out
    rc, out = check(capsys, recipe(tmp_path), "codec=nothing-here.nemo")
    assert rc == 2 and "no such .nemo file" in out


def test_a_language_is_said_once_per_tag_and_the_former_key_says_where(tmp_path, capsys):
    assert main(["check", str(recipe(tmp_path)), "data.filter.language=en"]) == 2
    err = capsys.readouterr().err
    assert "data.filter: unknown key 'language'; it is now " in err, err
    assert err.rstrip().endswith(".tags.<tag>.language") and len(err.strip().splitlines()) == 1
    rc, out = check(capsys, recipe(tmp_path), "tags.de.language=de")
    assert rc == 0, out


def test_tokenizer_coverage_of_a_sample_of_the_transcripts(tmp_path, capsys):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    letters = {c: i + 1 for i, c in enumerate("abcdefghijklmnopqrstuvwxyzGMW")}
    core = Tokenizer(models.WordLevel({"<unk>": 0, **letters}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>").save_pretrained(
        tmp_path / "tok")
    path = recipe(tmp_path, data_extra=f"  filter: {{tokenizer: {tmp_path / 'tok'}}}\n")
    rc, out = check(capsys, path)
    assert rc == 0, out  # every character known
    (tmp_path / "rec" / "anna" / "a1.txt").write_text("Wie geht es dir, Jürgen?")
    rc, out = check(capsys, path)
    assert rc == 2
    assert "character(s) of the transcripts are unknown" in out and "ü" in out and "J" in out


def test_the_run_commands_refuse_an_unusable_device_before_any_work(tmp_path, capsys, no_cuda,
                                                                    base_ckpt):
    out = tmp_path / "run"
    assert main(["train", "model.init=tiny", f"data.train={tmp_path / 'none'}",
                 "trainer.device=cuda", f"run_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert "trainer.device: cuda, but this torch build" in err
    assert f"data.train: {tmp_path / 'none'}: no such dataset" in err and not out.exists()
    assert main(["generate", str(base_ckpt), "--text", "hallo", "--device", "cuda",
                 "--out", str(tmp_path / "c.npy")]) == 2
    assert "--device: cuda, but" in capsys.readouterr().err
    (tmp_path / "set.jsonl").write_text(json.dumps({"text": "hallo", "tag": "de"}) + "\n")
    assert main(["eval", str(base_ckpt), "device=cuda", "codec=tiny",
                 "--set", str(tmp_path / "set.jsonl"), "--out", str(tmp_path / "eval")]) == 2
    assert "device: cuda, but" in capsys.readouterr().err and not (tmp_path / "eval").exists()


def test_a_check_is_a_function_returning_findings_and_wired_keys_are_said_once():
    def first(_):
        return [preflight.problem("a: cuda missing", "device:cuda"), preflight.note("n")]

    def second(_):
        return [preflight.problem("b: cuda missing", "device:cuda"), preflight.problem("c")]

    found = preflight.run_checks([first, second], None)
    assert [f.line for f in found] == ["a: cuda missing", "n", "c"]
    text = preflight.verdict("x", found)
    assert text.splitlines() == ["x: 2 problems; nothing was run", "  problem: a: cuda missing",
                                 "  problem: c", "  note: n"]
    with pytest.raises(preflight.PreflightError) as err:
        preflight.refuse(found)
    assert err.value.problems == ["a: cuda missing", "c"]
