"""One name and one home per setting: the codec and generator schemas share key names, required
fields have no default, and the defaults of shared values come from one constant."""
from __future__ import annotations

import pytest

from kani_adapt.training.codec.config import CodecTrainConfig
from kani_adapt.config.load import load_config
from kani_adapt.core.errors import ConfigError
from kani_adapt.training.config import TrainConfig


def test_codec_and_generator_use_the_same_names_for_lora_clip_and_checkpoint_interval():
    codec = load_config(CodecTrainConfig, None, ["train_manifest=m.json", "lora.r=4",
                                                  "optim.grad_clip=2.0", "ckpt_every=7"])
    assert (codec.lora.r, codec.optim.grad_clip, codec.ckpt_every) == (4, 2.0, 7)
    gen = load_config(TrainConfig, None, ["data.train=d", "model.init=tiny", "lora.r=4",
                                           "optim.grad_clip=2.0", "trainer.ckpt_every=7"])
    assert (gen.lora.r, gen.optim.grad_clip, gen.trainer.ckpt_every) == (4, 2.0, 7)


@pytest.mark.parametrize("old, new", [("lora.rank=4", "'r'"), ("optim.clip_grad_norm=1.0", "'grad_clip'"),
                                      ("checkpoint_every=5", "'ckpt_every'")])
def test_a_former_codec_key_name_is_refused_with_a_hint_naming_the_new_one(old, new):
    with pytest.raises(ConfigError) as err:
        load_config(CodecTrainConfig, None, ["train_manifest=m.json", old])
    message = str(err.value)
    assert "\n" not in message
    assert f"unknown key '{old.split('=')[0].split('.')[-1]}'; it is now called {new}" in message, message


def test_the_training_data_section_is_not_named_like_the_data_tools_config():
    import data_tools.config
    import kani_adapt.training.config as training

    assert not hasattr(training, "DataConfig")
    assert training.TrainDataConfig is not data_tools.config.DataConfig


def test_a_train_config_without_data_and_model_names_both_in_one_line():
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, None, ["lora.r=4"])
    message = str(err.value)
    assert "\n" not in message and message.startswith("2 problems"), message
    assert "data.train: required" in message and "e.g. data.train=" in message, message
    assert "model.init: required" in message and "model.init=tiny" in message, message


def test_an_empty_data_train_is_refused_instead_of_searching_the_current_folder():
    with pytest.raises(ConfigError, match="data: train is empty"):
        load_config(TrainConfig, None, ["data.train=", "model.init=tiny"])


def test_the_tiny_model_is_still_chosen_when_written_out():
    assert load_config(TrainConfig, None, ["data.train=d", "model.init=tiny"]).model.init == "tiny"


def test_train_command_without_data_and_model_refuses_before_touching_the_folder(tmp_path, capsys,
                                                                              monkeypatch):
    from kani_adapt.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", f"run_dir={tmp_path / 'run'}"]) != 0
    err = capsys.readouterr().err
    assert "data.train" in err and "model.init" in err, err
    assert list(tmp_path.iterdir()) == []


def test_every_schema_defaults_to_the_one_nanocodec_hub_id():
    import data_tools.stages.tokenize
    from kani_adapt.codec import nanocodec
    from kani_adapt.config.defaults import NANOCODEC_HUB_ID
    import dataclasses

    from kani_adapt.eval.config import EvalConfig
    from kani_adapt.recipes.schema import Recipe

    codec = load_config(CodecTrainConfig, None, ["train_manifest=m.json"])
    defaults = {codec.codec, {f.name: f.default for f in dataclasses.fields(EvalConfig)}["codec"], Recipe.codec, nanocodec.HUB_ID,
                data_tools.stages.tokenize.TokenizeConfig().codec}
    assert defaults == {NANOCODEC_HUB_ID}, defaults


def test_contribution_gate_uses_the_filter_section_and_old_keys_get_a_hint(tmp_path):
    from data_tools.stages.filter import FilterConfig
    from data_tools.contribute.config import ContributeConfig, load

    assert ContributeConfig().filter == FilterConfig()  # one section, not copied fields
    cfg = load(None, ["filter.min_snr_db=30"])
    assert cfg.filter.min_snr_db == 30.0
    with pytest.raises(ConfigError, match="it is now called 'filter.min_snr_db'"):
        load(None, ["min_snr_db=30"])


def test_clip_length_defaults_come_from_one_constant():
    from data_tools.stages.align import AlignConfig
    from data_tools.stages.filter import FilterConfig
    from data_tools.stages.segment import SegmentConfig
    from kani_adapt.cli.main import build_parser
    from kani_adapt.config.defaults import MAX_CLIP_SECONDS
    from kani_adapt.recipes.schema import CodecCheckStage

    assert SegmentConfig().max_seconds == AlignConfig().max_seconds == MAX_CLIP_SECONDS
    assert FilterConfig().max_seconds == CodecCheckStage().max_seconds == MAX_CLIP_SECONDS
    args = build_parser().parse_args(["codec", "check", "--codec", "tiny", "--manifest", "m"])
    assert args.max_seconds == MAX_CLIP_SECONDS  # the CLI and the recipe agree


def test_codec_and_generator_lora_and_optimiser_keys_are_declared_once():
    from kani_adapt.training.codec import config as codec
    from kani_adapt.config.shared import LoraCommon, OptimCommon
    from kani_adapt.training import config as gen

    assert issubclass(codec.LoraConfig, LoraCommon) and issubclass(gen.LoraConfig, LoraCommon)
    assert issubclass(codec.OptimConfig, OptimCommon) and issubclass(gen.OptimConfig, OptimCommon)
    for cls, base in ((CodecTrainConfig, ["train_manifest=m.json"]),
                      (TrainConfig, ["data.train=d", "model.init=tiny"])):
        with pytest.raises(ConfigError) as err:
            load_config(cls, None, [*base, "lora.r=0", "optim.lr=0", "optim.betas=[0.9, 1.0]"])
        message = str(err.value)
        assert message.startswith("3 problems") and "config.lora.r: 0 is outside >= 1" in message
        assert "config.optim.lr: 0.0 is outside > 0" in message and "optim.betas[1]" in message
        assert load_config(cls, None, [*base, "optim.grad_clip=0"]).optim.grad_clip == 0.0  # off


def test_a_run_folder_written_with_a_former_key_name_is_reopened(tmp_path):
    from kani_adapt.config.load import dump_yaml
    from kani_adapt.training.run import prepare_run_dir

    cfg = load_config(TrainConfig, None, ["data.train=d", "model.init=tiny", "trainer.device=cpu",
                                           f"run_dir={tmp_path / 'run'}"])
    saved = tmp_path / "run" / "config.yaml"
    dump_yaml(cfg, saved)
    text = saved.read_text()
    saved.write_text(text.replace("  device: cpu\n", "  accelerator: cpu\n"))  # an older version's
    assert "accelerator: cpu" in saved.read_text()
    assert prepare_run_dir(cfg) == tmp_path / "run"  # same run: reopened, not refused
    cfg.trainer.device = "cuda"
    with pytest.raises(ConfigError, match="another config"):
        prepare_run_dir(cfg)  # and a real change is still caught


def schema_fields(cls, path=""):
    """Every (dotted key, field name) of a schema and its sections."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{path}{f.name}"
        yield key, f.name
        tp = hints[f.name]
        inner = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)] or [tp]
        if dataclasses.is_dataclass(inner[0]):
            yield from schema_fields(inner[0], f"{key}.")


def test_where_a_run_goes_and_how_many_gpus_it_takes_have_names_apart(tmp_path):
    from kani_adapt.recipes.schema import Recipe

    keys = [key for key, name in schema_fields(Recipe) if name == "devices"]
    assert keys == []  # `device` is where; a count of GPUs is named as one
    assert "generator.trainer.gpus_per_node" in dict(schema_fields(Recipe))
    base = ["data.train=d", "model.init=tiny", f"run_dir={tmp_path / 'run'}"]
    with pytest.raises(ConfigError, match="unknown key 'devices'; it is now called 'gpus_per_node'"):
        load_config(TrainConfig, None, [*base, "trainer.devices=2"])


def test_a_run_folder_written_with_devices_reopens_with_its_gpu_count(tmp_path):
    from kani_adapt.config.load import dump_yaml, load_saved_config
    from kani_adapt.training.run import prepare_run_dir

    cfg = load_config(TrainConfig, None, ["data.train=d", "model.init=tiny", "trainer.device=cpu",
                                           "trainer.gpus_per_node=2", f"run_dir={tmp_path / 'run'}"])
    saved = tmp_path / "run" / "config.yaml"
    dump_yaml(cfg, saved)
    text = saved.read_text()
    assert "  gpus_per_node: 2\n" in text
    saved.write_text(text.replace("  gpus_per_node: 2\n", "  devices: 2\n"))  # an older version's
    assert load_saved_config(TrainConfig, saved).trainer.gpus_per_node == 2
    assert prepare_run_dir(cfg) == tmp_path / "run"  # same run: reopened, not refused
