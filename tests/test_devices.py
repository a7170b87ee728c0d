"""One meaning of `device` (and `seed`) in every schema, command and recipe."""
from __future__ import annotations

import pytest

from data_tools.config import DataConfig
from kani_adapt.core import devices
from kani_adapt.training.codec.config import CodecTrainConfig
from kani_adapt.config.load import load_config
from kani_adapt.core.errors import ConfigError
from kani_adapt.eval.config import EvalConfig
from kani_adapt.training.config import TrainConfig

BAD = "'gpu' is not a device; use auto, cpu, cuda, cuda:N or mps (a GPU is 'cuda')"
GEN = ["data.train=d", "model.init=tiny"]
CODEC = ["train_manifest=m.json"]


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_the_device_values_every_schema_takes(value):
    assert devices.problem(value) is None
    assert load_config(TrainConfig, None, [*GEN, f"trainer.device={value}"]).trainer.device == value


# ids without the word "gpu": the conftest skips tests carrying that keyword when CUDA is absent
@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "CUDA", "tpu", "cuda:0,1"],
                         ids=["g-p-u", "no-index", "bad-index", "upper-case", "tpu", "two-indices"])
def test_a_value_that_is_not_a_device_is_refused(value):
    assert devices.problem(value)


@pytest.mark.parametrize("cls, base, key", [
    (TrainConfig, GEN, "trainer.device"), (CodecTrainConfig, CODEC, "device"),
    (EvalConfig, [], "device"), (DataConfig, [], "embed.device"), (DataConfig, [], "segment.device")])
def test_every_schema_refuses_a_bad_device_with_the_same_message(cls, base, key):
    with pytest.raises(ConfigError) as err:
        load_config(cls, None, [*base, f"{key}=gpu"])
    assert str(err.value) == f"config.{key}: {BAD}"


@pytest.mark.parametrize("cls, base, key", [
    (TrainConfig, GEN, "trainer.seed"), (CodecTrainConfig, CODEC, "seed"), (EvalConfig, [], "sampling.seed")])
def test_every_schema_refuses_a_negative_seed_with_the_same_message(cls, base, key):
    with pytest.raises(ConfigError) as err:
        load_config(cls, None, [*base, f"{key}=-1"])
    assert str(err.value) == f"config.{key}: -1 is below 0; a seed is 0 or more"


@pytest.mark.parametrize("cls, base, old", [(TrainConfig, GEN, "trainer.accelerator"),
                                            (CodecTrainConfig, CODEC, "accelerator")])
def test_the_former_accelerator_key_gets_a_hint(cls, base, old):
    with pytest.raises(ConfigError, match="unknown key 'accelerator'; it is now called 'device'"):
        load_config(cls, None, [*base, f"{old}=gpu"])


def test_one_named_gpu_with_several_devices_is_refused():
    with pytest.raises(ConfigError, match="device cuda:1 names one GPU but gpus_per_node is 4"):
        load_config(TrainConfig, None, [*GEN, "trainer.device=cuda:1", "trainer.gpus_per_node=4"])
    cfg = load_config(TrainConfig, None, [*GEN, "trainer.device=cuda", "trainer.gpus_per_node=4"])
    assert devices.for_lightning(cfg.trainer.device) == ("gpu", None)  # the count decides


@pytest.mark.parametrize("device, expected", [
    ("auto", ("auto", None)), ("cpu", ("cpu", None)), ("cuda", ("gpu", None)),
    ("cuda:3", ("gpu", [3])), ("mps", ("mps", None))])
def test_lightning_gets_the_accelerator_and_the_named_gpu(device, expected):
    assert devices.for_lightning(device) == expected


@pytest.fixture
def four_gpus(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_auto_is_the_cpu_without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert devices.resolve("auto") == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.resolve("auto") == "mps"


def test_auto_is_the_first_gpu_for_a_single_process(four_gpus):
    assert devices.resolve("auto") == "cuda"
    assert devices.resolve("cuda:2") == "cuda:2" and devices.resolve("cpu") == "cpu"


@pytest.mark.parametrize("var, rank, expected", [
    ("LOCAL_RANK", "2", "cuda:2"), ("SLURM_LOCALID", "3", "cuda:3"),
    ("LOCAL_RANK", "5", "cuda:1")])  # more processes than GPUs: they share round-robin
def test_auto_gives_each_local_process_its_own_gpu(four_gpus, var, rank, expected):
    four_gpus.setenv(var, rank)
    assert devices.resolve("auto") == expected


def test_a_bad_device_option_is_one_usage_line(capsys):
    from kani_adapt.cli.main import main

    assert main(["speaker-emb", "ref.wav", "--out", "v.npy", "--device", "gpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and BAD in err, err
    from data_tools.cli import main as data_main

    assert data_main(["embed", "data.yaml", "--device", "cuda:x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'cuda:x' is not a device" in err, err
