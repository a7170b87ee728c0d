import pytest

from kani_adapt.cli.main import main
from kani_adapt.training.synthetic import synthetic_dataset


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("data") / "synth", n_speakers=3,
                             per_speaker=4)


@pytest.fixture(scope="session")
def base_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "tiny"
    assert main(["init", "--size", "tiny", "--out", str(out), "--dtype", "fp32",
                 "--alpha-init", "official"]) == 0
    return out


def cpu_overrides(run_dir, data, **extra):
    """Fast, deterministic CPU settings for tiny runs."""
    values = {
        "run_dir": run_dir, "data.train": data, "model.init": "tiny", "trainer.device": "cpu",
        "trainer.precision": "32-true", "trainer.max_steps": 4, "trainer.val_every": 4,
        "trainer.ckpt_every": 2, "trainer.log_every": 1, "trainer.sample_max_frames": 3,
        "data.token_budget": 600, "optim.warmup_steps": 1, "optim.lr": 0.01,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]
