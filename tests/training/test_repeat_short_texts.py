"""data.repeat_short_texts: short texts get copies of their human turn before the one spoken,
masked from the loss, a seeded share left plain; the run, its exports and `generate` lay
prompts out the same way."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kani_adapt import tokens
from kani_adapt.config.load import load_config
from kani_adapt.models.generator.batch import collate
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.data import GeneratorData
from tests.helpers import REQUIRED, tiny_generator

LAYOUT = tokens.TextLayout(below=13, target=16, most=8)


def test_the_number_of_copies_follows_the_text_length():
    ids = lambda n: [tokens.BOS, *range(40, 40 + n)]  # noqa: E731
    assert [LAYOUT.repeats(ids(n)) for n in (1, 2, 3, 5, 12, 13, 40)] == [8, 8, 6, 4, 2, 1, 1]
    assert tokens.TextLayout().repeats(ids(2)) == 1  # off
    assert LAYOUT.repeats([tokens.BOS]) == 1  # a dropped text (text_dropout) stays bare
    assert tokens.TextLayout.from_identity(LAYOUT.identity()) == LAYOUT


@pytest.mark.parametrize("loss_on", ["all", "audio"])
def test_copies_come_before_the_spoken_text_and_are_masked_from_the_loss(loss_on):
    text, codes = [tokens.BOS, 40, 41], np.arange(12).reshape(3, 4)
    plain = tokens.build_example(text, codes, loss_on=loss_on)
    repeated = tokens.build_example(text, codes, loss_on=loss_on, repeats=3)
    turn = tokens.human_turn(text)
    copies = 2 * len(turn)
    assert repeated.input_ids == turn * 2 + plain.input_ids
    assert repeated.labels == [tokens.IGNORE_INDEX] * copies + plain.labels
    assert repeated.num_frames == plain.num_frames
    # the generation prompt is the training sequence up to the audio
    assert repeated.input_ids[:copies + len(turn) + 2] == tokens.prompt_ids(text, repeats=3)


def test_the_loss_reads_the_copies_labels_so_masking_them_keeps_them_out():
    torch.manual_seed(0)
    model, tok = tiny_generator()
    from kani_adapt.training.module import GeneratorModule

    cfg = load_config(TrainConfig, None, [*REQUIRED, "mode=continue_pretrain"])
    module = GeneratorModule(cfg, model).eval()
    text = tokens.with_bos(tok("de: hallo", add_special_tokens=True)["input_ids"])
    example = tokens.build_example(text, np.arange(20).reshape(5, 4), repeats=4)
    copies = 3 * len(tokens.human_turn(text))
    unmasked = tokens.Example(example.input_ids,
                              example.input_ids[:copies] + example.labels[copies:],
                              example.num_frames)
    emb = torch.randn(1, 128)
    with torch.no_grad():
        masked_loss = module.forward_losses(collate([example], emb))["loss"]
        counted = module.forward_losses(collate([unmasked], emb))["loss"]
    assert not torch.isclose(masked_loss, counted)  # the copies would count if labelled


def _data(synth_data, tmp_path, *extra):
    from kani_adapt.models.generator.checkpoint import build_base

    _, tok = build_base("tiny", seed=0)
    cfg = load_config(TrainConfig, None, [*REQUIRED, f"data.train={synth_data}",
                                          f"run_dir={tmp_path}", "data.num_workers=0", *extra])
    data = GeneratorData(cfg, tok)
    data.setup("fit")
    return data


def test_training_repeats_short_rows_but_a_seeded_share_the_same_every_run(synth_data, tmp_path):
    on = ["data.repeat_short_texts=true", "data.repeat_below=60", "data.repeat_target=120",
          "data.repeat_keep=0.25"]
    plain = _data(synth_data, tmp_path)
    a, b = _data(synth_data, tmp_path, *on), _data(synth_data, tmp_path, *on)
    other_seed = _data(synth_data, tmp_path, *on, "trainer.seed=7")
    n = len(a.train_set)
    assert a.train_set.repeats == b.train_set.repeats  # resume sees the same layout
    assert a.train_set.repeats != other_seed.train_set.repeats
    assert sum(r == 1 for r in a.train_set.repeats) == round(0.25 * n)  # the plain share
    assert all(r > 1 for r in a.val_set.repeats)  # validation is laid out as generation is
    assert a.stats["repeated_rows"] == n - round(0.25 * n)
    assert not plain.train_set.repeats or set(plain.train_set.repeats) == {1}
    for i in range(n):  # the planned lengths are the examples' lengths (token budget)
        item = a.train_set[i]
        assert a.train_set.lengths[i] == len(item.example.input_ids) + 1  # + the speaker slot
        copies = (a.train_set.repeats[i] - 1) * len(tokens.human_turn(a.train_set.text_ids[i]))
        assert item.example.labels[:copies] == [tokens.IGNORE_INDEX] * copies
        assert item.example.labels[copies:] == plain.train_set[i].example.labels
    assert a.text_layout == tokens.TextLayout(below=60, target=120, most=8)


def test_a_saved_layout_is_loaded_with_the_model_and_used_by_generation(tmp_path, monkeypatch):
    from kani_adapt.models.generator import synthesize
    from kani_adapt.models.generator.checkpoint import load_checkpoint, save_checkpoint

    model, tok = tiny_generator()
    save_checkpoint(model, tok, tmp_path / "plain", dtype="fp32")
    save_checkpoint(model, tok, tmp_path / "repeating", dtype="fp32", text_layout=LAYOUT)
    assert not (tmp_path / "plain" / "text_layout.json").exists()  # plain stays as it was
    seen = []
    monkeypatch.setattr(synthesize, "generate", lambda m, prompts, *a, **k: seen.extend(prompts) or [])
    short, long = [tokens.BOS, 40, 41, 42], [tokens.BOS, *range(40, 60)]
    for name in ("plain", "repeating"):
        loaded, _ = load_checkpoint(str(tmp_path / name))
        synthesize.synthesize_ids(loaded, None, [short, long])
    assert seen == [tokens.prompt_ids(short), tokens.prompt_ids(long),
                    tokens.prompt_ids(short, repeats=6), tokens.prompt_ids(long)]


def test_a_target_under_the_threshold_is_refused_with_what_to_set():
    from kani_adapt.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"repeat_target 10 is under repeat_below 13"):
        load_config(TrainConfig, None, [*REQUIRED, "data.repeat_short_texts=true",
                                        "data.repeat_target=10"])
    load_config(TrainConfig, None, [*REQUIRED, "data.repeat_target=10"])  # off: no matter


@pytest.mark.parametrize("content", ['{"below": -1}', '{"below": "many"}', "[1, 2]"])
def test_a_bad_layout_file_is_one_error_naming_it(tmp_path, content):
    from kani_adapt.core.errors import CheckpointError
    from kani_adapt.models.generator.checkpoint import TEXT_LAYOUT, read_layout

    (tmp_path / TEXT_LAYOUT).write_text(content)
    with pytest.raises(CheckpointError, match=rf"{tmp_path / TEXT_LAYOUT}: .*fix or delete it"):
        read_layout(tmp_path)
