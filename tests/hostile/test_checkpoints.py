"""Planted checkpoints never run code; resume takes the newest intact one and says which."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tests.helpers import REQUIRED
from kani_adapt.cli.main import main
from kani_adapt.config.load import dump_yaml, load_config
from kani_adapt.training.codec.config import CodecTrainConfig
from kani_adapt.core.errors import CheckpointError
from kani_adapt.trainer.resume import SafeCheckpointIO, load_state, pick_checkpoint
from tests.hostile.refusals import assert_refused, files_under, plant_payload


def _intact(path, step):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"w": torch.ones(2)}, "global_step": step}, path)
    return path


def test_the_planted_payload_is_live(tmp_path):
    """Control: loaded the way Lightning 2.4 loads checkpoints, the file runs its command."""
    marker = tmp_path / "marker"
    path = plant_payload(tmp_path / "last.ckpt", marker)
    code = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert marker.exists()


def test_a_checkpoint_that_needs_unpickling_is_refused(tmp_path):
    marker = tmp_path / "marker"
    path = plant_payload(tmp_path / "last.ckpt", marker)
    with pytest.raises(CheckpointError) as err:
        load_state(path)
    assert str(path) in str(err.value) and "posix.system" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError):
        SafeCheckpointIO().load_checkpoint(path)
    assert not marker.exists()


def test_resume_skips_a_payload_last_ckpt_for_the_intact_step_checkpoint(tmp_path, capsys):
    marker = tmp_path / "marker"
    plant_payload(tmp_path / "last.ckpt", marker)
    _intact(tmp_path / "step-0000002.ckpt", 2)
    _intact(tmp_path / "step-0000001.ckpt", 1)
    path, state = pick_checkpoint(tmp_path)
    assert path.name == "step-0000002.ckpt" and state["global_step"] == 2
    err = capsys.readouterr().err
    assert "skipping" in err and "last.ckpt" in err and "continuing from" in err
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "not a checkpoint"])
def test_resume_skips_a_damaged_last_ckpt(tmp_path, damage):
    last = _intact(tmp_path / "last.ckpt", 3)
    _intact(tmp_path / "step-0000003.ckpt", 3)
    _intact(tmp_path / "step-0000010.ckpt", 10)  # stale numbering must not win over order
    data = last.read_bytes()
    last.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"\x00" * 99,
                      "not a checkpoint": b""}[damage])
    if damage == "not a checkpoint":
        torch.save([1, 2, 3], last)
    path, state = pick_checkpoint(tmp_path)
    assert path.name == "step-0000010.ckpt" and state["global_step"] == 10


def test_no_intact_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    marker = tmp_path / "marker"
    plant_payload(tmp_path / "last.ckpt", marker)
    (tmp_path / "step-0000002.ckpt").write_bytes(b"PK\x03\x04cut")
    with pytest.raises(CheckpointError, match="no intact checkpoint.*last.ckpt.*and 1 more"):
        pick_checkpoint(tmp_path)
    assert pick_checkpoint(tmp_path / "empty") == (None, None)
    assert not marker.exists()


def test_fsdp_resume_checks_before_lightning_unpickles(tmp_path):
    from kani_adapt.trainer.resume import safe_fsdp_strategy

    marker = tmp_path / "marker"
    path = plant_payload(tmp_path / "last.ckpt", marker)
    with pytest.raises(CheckpointError):
        safe_fsdp_strategy().load_checkpoint(path)
    assert not marker.exists()


def test_generator_train_refuses_a_planted_checkpoint_in_one_line(tmp_path, capsys, synth_data):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    plant_payload(run / "checkpoints" / "last.ckpt", marker)
    assert_refused(main, ["train", f"run_dir={run}", "trainer.device=cpu", *REQUIRED,
                          f"data.train={synth_data}"], capsys,
                   "last.ckpt", "unpickling")
    assert not marker.exists()
    assert {p.name for p in files_under(tmp_path)} <= {"run", "checkpoints", "last.ckpt", "config.yaml",
                                                       ".locks", "run.lock"}


def test_codec_resume_refuses_a_planted_checkpoint_in_one_line(tmp_path, capsys):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    run.mkdir()
    dump_yaml(load_config(CodecTrainConfig, None, ["train_manifest=m.json", f"run_dir={run}"]),
              run / "config.yaml")
    plant_payload(run / "checkpoints" / "last.ckpt", marker)
    assert_refused(main, ["codec", "train", "--resume", str(run)], capsys, "last.ckpt", "unpickling")
    assert not marker.exists()


@pytest.mark.slow
def test_generator_resumes_from_the_intact_step_checkpoint_beside_a_payload(tmp_path, capsys):
    from kani_adapt.training.synthetic import synthetic_dataset
    from tests.helpers import cpu_overrides

    data = synthetic_dataset(tmp_path / "data", n_speakers=3, per_speaker=4)
    run, marker = tmp_path / "run", tmp_path / "marker"
    args = cpu_overrides(run, data, **{"trainer.max_steps": 2, "trainer.ckpt_every": 2,
                                       "trainer.val_every": 2})
    assert main(["train", *args]) == 0
    plant_payload(run / "checkpoints" / "last.ckpt", marker)
    outside = {p for p in files_under(tmp_path) if run not in p.parents}
    capsys.readouterr()
    assert main(["train", *args, "trainer.max_steps=3"]) == 0
    err = capsys.readouterr().err
    assert "continuing from" in err and "step-0000002.ckpt" in err
    assert not marker.exists()
    assert {p for p in files_under(tmp_path) if run not in p.parents} == outside
    assert load_state(run / "checkpoints" / "last.ckpt")["global_step"] == 3


@pytest.mark.slow
def test_codec_resumes_from_the_step_checkpoint_when_last_is_truncated(tmp_path, capsys):
    from kani_adapt.training.codec.train import resume_run, start_run
    from tests.codec.corpus import write_corpus
    from tests.training.codec.test_train import overrides

    corpus = write_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    start_run(None, overrides(corpus, run, max_steps=2, ckpt_every=1))
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    (run / "checkpoints" / "step-000002.ckpt").unlink()  # the newest intact one is step 1
    capsys.readouterr()
    summary = resume_run(run, ["max_steps=3"])
    assert "step-000001.ckpt" in capsys.readouterr().err
    assert summary["batches"] == 3


def test_codec_export_refuses_a_planted_checkpoint_in_one_line(tmp_path, capsys):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    run.mkdir()
    dump_yaml(load_config(CodecTrainConfig, None, ["train_manifest=m.json", f"run_dir={run}",
                                                   "codec=tiny", "discriminators=[]"]),
              run / "config.yaml")
    plant_payload(run / "checkpoints" / "last.ckpt", marker)
    assert_refused(main, ["codec", "export", str(run), "--out", str(tmp_path / "out.nemo")], capsys,
                   "last.ckpt", "unpickling")
    assert not marker.exists() and not (tmp_path / "out.nemo").exists()


def test_generator_export_refuses_a_planted_checkpoint_in_one_line(tmp_path, capsys):
    from kani_adapt.training.config import TrainConfig

    marker = tmp_path / "marker"
    run = tmp_path / "run"
    run.mkdir()
    dump_yaml(load_config(TrainConfig, None, [*REQUIRED, f"run_dir={run}"]), run / "config.yaml")
    plant_payload(run / "checkpoints" / "last.ckpt", marker)
    assert_refused(main, ["export", str(run), "--out", str(tmp_path / "out")], capsys,
                   "last.ckpt", "unpickling")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_saved_checkpoints_drop_hyper_parameters_that_need_unpickling(tmp_path):
    from omegaconf import OmegaConf

    state = {"state_dict": {"w": torch.ones(1)}, "global_step": 1,
             "hyper_parameters": OmegaConf.create({"a": 1}), "hparams_type": OmegaConf.create}
    SafeCheckpointIO().save_checkpoint(state, tmp_path / "last.ckpt")
    loaded = load_state(tmp_path / "last.ckpt")
    assert loaded["global_step"] == 1 and "hyper_parameters" not in loaded
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left
