"""Codec fine-tuning on the tiny codec: modes, exact resume, export, CLI entry points."""
import json

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from kani_adapt.cli.main import main
from kani_adapt.codec import nanocodec
from kani_adapt.training.codec.train import export_run, load_trained, resume_run, start_run, token_drift
from kani_adapt.core.errors import ConfigError
from tests.codec.corpus import tone


def overrides(corpus, run, **extra):
    values = dict(train_manifest=corpus, run_dir=run, codec="tiny", discriminators="[]", max_steps=2,
                  batch_size=2, segment_seconds=0.16, val_every=2, val_clips=1, val_seconds=0.5,
                  ckpt_every=1)
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def _encoder_out(model):
    audio = torch.from_numpy(tone(0.5, 220))[None]
    with torch.no_grad():
        return model.encode_audio(audio=audio, audio_len=torch.tensor([audio.shape[1]]))[0]


def test_decoder_mode_keeps_encoder_outputs_bit_identical(corpus, tmp_path):
    start_run(None, overrides(corpus, tmp_path / "run", **{"optim.lr": 1e-2}))
    trained, _ = load_trained(tmp_path / "run")
    base = nanocodec.load_model("tiny")
    assert torch.equal(_encoder_out(trained), _encoder_out(base))
    changed = [k for k, v in base.audio_decoder.state_dict().items()
               if not torch.equal(v, trained.audio_decoder.state_dict()[k])]
    assert changed  # the decoder did train


def test_full_mode_trains_encoder_and_reports_token_drift(corpus, tmp_path):
    with pytest.warns(UserWarning, match="re-train the generator"):
        summary = start_run(None, overrides(corpus, tmp_path / "run", mode="full", **{"optim.lr": 1e-2}))
    assert 0 < summary["token_drift"] <= 1 and "Re-tokenize" in summary["warning"]
    trained, _ = load_trained(tmp_path / "run")
    base = nanocodec.load_model("tiny")
    assert not torch.equal(_encoder_out(trained), _encoder_out(base))


def test_token_drift_counts_frames_with_any_changed_codebook():
    before = [torch.zeros(4, 5, dtype=torch.long), torch.zeros(4, 3, dtype=torch.long)]
    after = [b.clone() for b in before]
    after[0][2, 1] = 7  # one frame, one codebook
    after[1][:, 0] = 1  # one frame, all codebooks
    assert token_drift(before, after) == 2 / 8


def test_lora_run_exports_a_merged_codec_equal_to_the_adapted_one(corpus, tmp_path):
    summary = start_run(None, overrides(corpus, tmp_path / "run", mode="lora", **{"optim.lr": 1e-2}))
    adapter_file = tmp_path / "run" / "adapter.safetensors"
    assert summary["adapter"] == str(adapter_file) and adapter_file.stat().st_size < 100_000
    unmerged, _ = load_trained(tmp_path / "run")
    result = export_run(tmp_path / "run", tmp_path / "merged.nemo")
    merged = nanocodec.load_codec(result["codec"])
    codes = torch.randint(0, 4032, (1, 4, 3), generator=torch.Generator().manual_seed(0))
    adapted = nanocodec.NemoCodec(unmerged).decode(codes, torch.tensor([3]))[0]
    base = nanocodec.load_codec("tiny").decode(codes, torch.tensor([3]))[0]
    assert torch.allclose(merged.decode(codes, torch.tensor([3]))[0], adapted, atol=1e-5)
    assert not torch.allclose(adapted, base, atol=1e-4)  # the adapter did something


class Crash(Callback):
    """Simulates a crash when batch ``at`` would start (after the previous checkpoint)."""

    def __init__(self, at):
        self.at = at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= self.at * 2:
            raise RuntimeError("simulated crash")


class Counter(Callback):
    batches = 0

    def on_train_batch_end(self, *args):
        self.batches += 1


def _final_state(run):
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt["state_dict"], ckpt["optimizer_states"], ckpt["lr_schedulers"]


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(corpus, tmp_path):
    # MRD only: two optimizers (the case Lightning's max_steps counts twice) at test speed.
    args = dict(discriminators="[mrd]", max_steps=3, ckpt_every=2)
    start_run(None, overrides(corpus, tmp_path / "full", **args))
    with pytest.raises(RuntimeError, match="simulated crash"):
        start_run(None, overrides(corpus, tmp_path / "cut", **args), extra_callbacks=[Crash(2)])
    assert (tmp_path / "cut" / "checkpoints" / "step-000002.ckpt").exists()
    assert not (tmp_path / "cut" / "checkpoints" / "step-000003.ckpt").exists()
    counter = Counter()
    summary = resume_run(tmp_path / "cut", [], extra_callbacks=[counter])
    assert summary["batches"] == 3 and counter.batches == 1  # continued, did not start over
    (ref_w, ref_opt, ref_sched), (w, opt, sched) = _final_state(tmp_path / "full"), _final_state(tmp_path / "cut")
    assert any(k.startswith("discriminator.") for k in ref_w) and len(ref_opt) == 2
    assert set(w) == set(ref_w) and all(torch.equal(w[k], ref_w[k]) for k in ref_w)
    for a, b in zip(opt, ref_opt):
        for pid, st in b["state"].items():
            assert all(torch.equal(st[k], a["state"][pid][k]) for k in st)
    assert sched == ref_sched


@pytest.mark.slow
def test_mpd_and_mrd_discriminators_train_beside_the_decoder(corpus, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    start_run(None, overrides(corpus, tmp_path / "run", discriminators="[mpd,mrd]", max_steps=1))
    state, optimizers, _ = _final_state(tmp_path / "run")
    initial = nanocodec.build_model("tiny", seed=0, discriminators=("mpd", "mrd")).state_dict()
    for part in ("discriminator.discriminators.0.", "discriminator.discriminators.1."):
        keys = [k for k in state if k.startswith(part)]
        assert keys and any(not torch.equal(state[k], initial[k]) for k in keys)
    assert len(optimizers) == 2
    events = EventAccumulator(str(tmp_path / "run" / "tb")).Reload()
    assert {"d_loss", "g_loss_gen", "g_loss_feature", "g_loss_mel_l1"} <= set(events.Tags()["scalars"])
    assert {"val_0/original", "val_0/reconstructed"} <= set(events.Tags()["audio"])
    assert "val_0/reconstructed_spectrogram" in events.Tags()["images"]


def test_cli_train_export_and_resume_leave_a_complete_run_dir(corpus, tmp_path, capsys):
    config = tmp_path / "codec.yaml"
    config.write_text("codec: tiny\ndiscriminators: []\nbatch_size: 2\nsegment_seconds: 0.16\n"
                      "val_clips: 1\nval_seconds: 0.5\n")
    run = tmp_path / "run"
    rc = main(["codec", "train", str(config), f"train_manifest={corpus}", f"run_dir={run}",
               "max_steps=2", "val_every=1", "ckpt_every=2"])
    assert rc == 0, capsys.readouterr().err
    assert "batches: 2" in capsys.readouterr().out
    assert (run / "config.yaml").read_text().count(str(corpus)) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt", "step-000002.ckpt"]
    assert list((run / "tb").glob("events.out.tfevents.*"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["batch"] for r in rows] == [0, 1, 2] and all("val_mel" in r for r in rows)
    assert main(["codec", "train", "--resume", str(run), "max_steps=3"]) == 0
    assert json.loads((run / "summary.json").read_text())["batches"] == 3
    out = tmp_path / "export" / "codec.nemo"
    assert main(["codec", "export", str(run), "--out", str(out)]) == 0
    assert nanocodec.load_codec(str(out)).codebook_size == 4032


@pytest.mark.parametrize("argv, fragment", [
    (["codec", "train", "{cfg}", "max_step=3"], "did you mean 'max_steps'"),
    (["codec", "train", "{cfg}", "mode=partial"], "mode"),
    (["codec", "train", "--resume", "{tmp}/nothing"], "not a codec run directory"),
    (["codec", "export", "{tmp}/nothing", "--out", "x.nemo"], "not a codec run directory"),
])
def test_codec_command_errors_are_one_line(argv, fragment, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train_manifest: m.json\n")
    argv = [a.format(cfg=cfg, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and fragment in err and "\n" not in err


def test_resume_refuses_changes_that_alter_the_computation(corpus, tmp_path):
    start_run(None, overrides(corpus, tmp_path / "run", max_steps=1))
    with pytest.raises(ConfigError, match="may only change"):
        resume_run(tmp_path / "run", ["optim.lr=1"])
    with pytest.raises(ConfigError, match="not empty"):
        start_run(None, overrides(corpus, tmp_path / "run"))


class Signal(Callback):
    """Sends this process ``signum`` once batch ``at`` has ended, as ``kill`` would."""

    def __init__(self, at, signum):
        self.at, self.signum = at, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.at:
            import os

            os.kill(os.getpid(), self.signum)


@pytest.mark.slow
def test_sigterm_checkpoints_the_batch_it_stopped_at_and_the_run_resumes(corpus, tmp_path):
    import signal

    from kani_adapt.core.stopping import Stopped

    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Stopped, match=r"stopped by SIGTERM at step \d+; rerun to resume") as stop:
        start_run(None, overrides(corpus, run, max_steps=4, ckpt_every=100, val_every=100),
                  extra_callbacks=[Signal(1, signal.SIGTERM)])
    assert signal.getsignal(signal.SIGTERM) is before  # the fit's handler is gone again
    step = stop.value.step
    assert 1 <= step < 4 and stop.value.exit_code == 128 + signal.SIGTERM
    assert (run / "checkpoints" / f"step-{step:06d}.ckpt").exists()  # not the cadence's: 100
    assert not (run / "summary.json").exists()  # an unfinished run does not say it finished
    counter = Counter()
    assert resume_run(run, [], extra_callbacks=[counter])["batches"] == 4
    assert counter.batches == 4 - step


def test_auto_discriminators_are_sized_to_the_codec_and_device_and_said(corpus, tmp_path, caplog):
    import logging

    from kani_adapt.config.load import load_saved_config
    from kani_adapt.training.codec.config import CodecTrainConfig
    from kani_adapt.training.codec.discriminators import choose

    values = overrides(corpus, tmp_path / "run", max_steps=1, ckpt_every=1, val_every=1)
    with caplog.at_level(logging.INFO, logger="kani_adapt"):
        start_run(None, [v for v in values if not v.startswith("discriminators=")])  # auto
    saved = load_saved_config(CodecTrainConfig, tmp_path / "run" / "config.yaml")
    assert saved.discriminators == []  # the tiny codec on a CPU: none, recorded for a resume
    lines = [r.getMessage() for r in caplog.records]
    chosen = next(k for k, line in enumerate(lines) if "discriminators none (auto: on cpu" in line)
    starting = next(k for k, line in enumerate(lines)
                    if line.startswith("codec fine-tuning: step 1 of 1 starting (set up in "))
    first_step = next(k for k, line in enumerate(lines) if line.startswith("step 1/1"))
    assert chosen < starting < first_step  # said before the silence of the set-up ends
    # on a GPU: NeMo's recipe in proportion to the decoder, a stored set kept, a list as written
    assert choose("auto", 64, False, "cuda").kinds == ("mrd",)
    assert choose("auto", 864, False, "cuda:1").kinds == ("mpd", "mrd")
    assert "the codec's own" in choose("auto", 864, True, "cuda").line
    assert choose(["mpd"], 64, False, "cpu").kinds == ("mpd",)
    assert choose([], 864, True, "cuda").line == "codec fine-tuning: discriminators none, as set"
