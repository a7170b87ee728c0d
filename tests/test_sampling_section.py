"""One sampling section (kani_adapt/config/sampling.py): every schema that generates speech has it under
the same name, every generation path hands it on whole, and no code spells a sampling value."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from kani_adapt.config.load import load_config
from kani_adapt.core.errors import ConfigError
from kani_adapt.eval.config import EvalConfig
from kani_adapt.config.sampling import SamplingConfig, layered
from kani_adapt.training.config import TrainConfig
from tests.helpers import REQUIRED, sampling_handed_on

ROOT = Path(__file__).resolve().parents[1]


def test_every_schema_that_generates_has_the_section_with_its_ranges():
    from kani_adapt.recipes.schema import SampleStage

    for cls, base in ((EvalConfig, []), (TrainConfig, REQUIRED), (SampleStage, [])):
        cfg = load_config(cls, None, [*base, "sampling.temperature=0.3", "sampling.max_frames=9"])
        assert isinstance(cfg.sampling, SamplingConfig)
        assert (cfg.sampling.temperature, cfg.sampling.max_frames) == (0.3, 9)
        with pytest.raises(ConfigError, match=r"sampling.top_p: 1.5 is outside \(0, 1\]"):
            load_config(cls, None, [*base, "sampling.top_p=1.5"])
        assert cfg.sampling.seed == 0  # evaluations, training and samples repeat themselves


def test_a_partly_given_section_keeps_its_schemas_other_defaults():
    cfg = load_config(TrainConfig, None, [*REQUIRED, "sampling.temperature=0.2"])
    assert (cfg.sampling.max_frames, cfg.sampling.seed) == (250, 0)  # the training defaults


def test_former_sampling_keys_are_named_with_their_new_place():
    with pytest.raises(ConfigError) as err:
        load_config(EvalConfig, None, ["max_frames=6", "temperature=0.5"])
    assert "unknown key 'max_frames'; it is now called 'sampling.max_frames'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, None, [*REQUIRED, "trainer.sample_max_frames=3", "eval.seed=1"])
    message = str(err.value)
    assert message.startswith("2 problems") and "did you mean" not in message, message
    assert ("config.trainer: unknown key 'sample_max_frames'; it is now config.sampling.max_frames"
            in message)
    assert "config.eval: unknown key 'seed'; it is now config.sampling.seed" in message


def test_the_users_value_beats_the_checkpoints_which_beats_the_default():
    got = layered({"temperature": 0.0, "top_p": None}, {"top_p": 0.5, "temperature": 0.9})
    assert (got.temperature, got.top_p, got.max_frames) == (0.0, 0.5, SamplingConfig().max_frames)
    with pytest.raises(ConfigError, match="generate.max_frames: 0 is outside >= 1"):
        layered({"max_frames": 0}, {}, where="generate")


@pytest.fixture
def handed_on(monkeypatch):
    return sampling_handed_on(monkeypatch)


def test_eval_generation_hands_on_the_section_whole_with_each_samples_seed(handed_on, base_ckpt):
    from kani_adapt.eval.evalset import EvalItem
    from kani_adapt.eval.generation import generate_items

    cfg = load_config(EvalConfig, None, ["sampling.temperature=0.4", "sampling.max_frames=2",
                                         "sampling.repetition_penalty=1.3", "sampling.seed=5"])
    generate_items(str(base_ckpt), [EvalItem(id="a", text="hallo", speaker="s")], [None], cfg,
                   "cpu", seed=cfg.sampling.seed + 1)
    assert handed_on == [dataclasses.replace(cfg.sampling, seed=6)]


def test_training_samples_and_scored_speech_use_the_runs_section(handed_on, tmp_path, synth_data):
    from kani_adapt.eval.callback import eval_callbacks
    from kani_adapt.training.data import GeneratorData
    from kani_adapt.training.samples import make_sample_hook
    from tests.helpers import tiny_generator
    from tests.models.test_synthesize import FrameCodecProtocol

    cfg = load_config(TrainConfig, None, [f"data.train={synth_data}", "model.init=tiny",
                                          "sampling.temperature=0.3", "sampling.max_frames=2",
                                          "sampling.seed=9", "data.num_workers=0"])
    model, tok = tiny_generator()
    data = GeneratorData(cfg, tok)
    data.setup("fit")

    class Module:  # what the hook reads of the LightningModule
        kani, global_step, loggers = model, 0, []

        def log(self, *args, **kwargs):
            pass

    make_sample_hook(cfg, data.val_set)(Module())
    scored = dataclasses.replace(cfg.eval, prompts=1,
                                 scorers=dataclasses.replace(cfg.eval.scorers, dnsmos=False))
    [callback] = eval_callbacks(scored, data.val_set, FrameCodecProtocol(), sampling=cfg.sampling)
    callback.evaluate(model)
    assert handed_on == [cfg.sampling, cfg.sampling]


def test_no_code_below_the_schemas_spells_a_sampling_value():
    """Sampling settings are built by the loader (or replaced whole); a keyword value of
    SamplingConfig in the code would be a second default."""
    offenders = []
    for folder in ("kani_adapt", "data_tools"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "sampling.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(
                        node.func, "attr", "")).endswith(("SamplingConfig", "Sampling")) and (
                        node.args or node.keywords):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def generate_parser():
    from kani_adapt.cli.main import build_parser

    return build_parser()._subparsers._group_actions[0].choices["generate"]


def generate_args(*extra: str):
    from kani_adapt.cli.main import build_parser

    return build_parser().parse_args(["generate", "ckpt", "--text", "x", "--out", "c.npy", *extra])


def test_generate_has_a_flag_for_every_sampling_field_with_its_help_and_range():
    options = {a.dest: a for a in generate_parser()._actions}
    for f in dataclasses.fields(SamplingConfig):
        action = options[f.name]
        assert action.option_strings[0] == "--" + f.name.replace("_", "-")
        assert action.default is None  # not given: the checkpoint's value, else the default
        assert f.metadata["help"] and action.help.startswith(f.metadata["help"])
        if f.name in SamplingConfig.RANGES:
            assert f"range {SamplingConfig.RANGES[f.name]}" in action.help
    args = generate_args("--temperature", "0", "--top-p", "0.5", "--max-frames", "7", "--seed", "3",
                         "--no-constrain", "--cfg-scale", "2", "--cfg-frames", "4",
                         "--repetition-penalty", "1.2")
    from kani_adapt.cli.generate_command import sampling_of

    assert sampling_of(args, {"top_p": 0.9, "temperature": 0.8}) == SamplingConfig(
        temperature=0.0, top_p=0.5, repetition_penalty=1.2, max_frames=7, seed=3,
        constrain_audio=False, cfg_scale=2.0, cfg_frames=4)
    assert sampling_of(generate_args(), {"top_p": 0.9}) == SamplingConfig(top_p=0.9)


@dataclasses.dataclass(frozen=True)
class WiderSampling(SamplingConfig):
    """A sampling section with a setting generate's command line has never heard of."""

    min_p: float = dataclasses.field(default=0.0, metadata={"help": "drop tokens below this share "
                                                                    "of the likeliest"})
    RANGES = {"min_p": "[0, 1]"}


def test_a_new_sampling_field_reaches_generate_with_no_edit_there(monkeypatch, capsys):
    from kani_adapt.cli.generate_command import sampling_of
    from kani_adapt.cli.main import main
    from kani_adapt.config import sampling

    monkeypatch.setattr(sampling, "SamplingConfig", WiderSampling)
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--min-p MIN_P drop tokens below this share of the likeliest; range [0, 1]; default: 0.0" \
        in shown
    assert "--top-p TOP_P nucleus sampling mass; range (0, 1]" in shown  # the base's ranges too
    chosen = sampling_of(generate_args("--min-p", "0.1"), {})
    assert isinstance(chosen, WiderSampling) and chosen.min_p == 0.1
    with pytest.raises(ConfigError, match=r"generate.min_p: 1.5 is outside \[0, 1\]"):
        sampling_of(generate_args("--min-p", "1.5"), {})  # the range is the loader's
