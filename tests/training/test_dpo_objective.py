"""``objective: dpo``: a pairs file read back as written, refused when it belongs to another
likelihood, a first step at log 2 when the policy is the reference, steps that widen the margin
(the end-of-speech row moving only with the stop terms), pair weights, and the hacking warning."""
import logging
import math

import numpy as np
import pytest
import torch

from kani_adapt import tokens
from kani_adapt.config.load import load_config
from kani_adapt.core.errors import ConfigError, DataError
from kani_adapt.models.generator.tokenizer import encode_text
from kani_adapt.training import pairs as pairs_file, trajectory
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.module import GeneratorModule
from kani_adapt.training.objectives import dpo
from kani_adapt.training.pairs_data import PairsData, collate_pairs, split
from tests.helpers import REQUIRED, tiny_generator

TEXTS = ("ja", "nein", "danke", "hallo")


def make_pairs(model, tok, folder, floor=1e-4, layout=tokens.TextLayout(), seed=0):
    """Two pairs per text: the chosen stops after 3 frames, the rejected runs to the cap (12)."""
    rng = np.random.default_rng(seed)
    found = []
    for k, text in enumerate(TEXTS):
        ids = encode_text(tok, text, "de")
        prompt = tokens.prompt_ids(ids, repeats=layout.repeats(ids))
        voice = rng.standard_normal(128).astype(np.float32)
        for j in range(2):
            chosen = rng.integers(0, tokens.CODEBOOK_SIZE, (3, 4))
            rejected = np.concatenate([chosen, rng.integers(0, tokens.CODEBOOK_SIZE, (9, 4))])
            rolls = [trajectory.Rollout(prompt, chosen, False, voice),
                     trajectory.Rollout(prompt, rejected, True, voice)]
            ref = trajectory.reference(model, rolls, floor)
            found.append(pairs_file.Pair(
                group=f"{text}/v{k}", prompt=prompt, text=text, tag="de", kind="short",
                speaker=f"v{k}", speaker_emb=voice, weight=1.0 + j,
                chosen=pairs_file.Side(chosen, False, ref[0], 0.0),
                rejected=pairs_file.Side(rejected, True, ref[1], -3.0)))
    meta = pairs_file.Meta(layout=layout.identity(), frontend={"version": "1"}, stop_floor=floor,
                           policy="tiny", counts={"groups": len(TEXTS)})
    return pairs_file.write(folder, found, meta)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    torch.manual_seed(0)
    model, tok = tiny_generator(seed=1)
    folder = make_pairs(model, tok, tmp_path_factory.mktemp("pairs"))
    return model, tok, folder


def dpo_cfg(folder, *extra):
    return load_config(TrainConfig, None, [*REQUIRED, "objective=dpo", f"dpo.pairs={folder}",
                                           "mode=lora", "lora.targets=qv", "lora.stop_row=true",
                                           "lora.dropout=0", "dpo.val_share=0", *extra])


def module_and_batch(world, *extra):
    model, tok, folder = world
    import copy

    cfg = dpo_cfg(folder, *extra)
    module = GeneratorModule(cfg, copy.deepcopy(model))
    data = PairsData(cfg, tok)
    data.setup()
    batch = collate_pairs(True)([data.train_set[i] for i in range(len(data.train_set))])
    return module, batch


def test_a_pairs_file_reads_back_as_written(world, tmp_path):
    model, tok, folder = world
    found, meta = pairs_file.read(folder)
    assert len(found) == 2 * len(TEXTS) and meta.stop_floor == 1e-4
    first = found[0]
    assert first.chosen.codes.shape == (3, 4) and first.rejected.truncated and not first.chosen.truncated
    assert first.prompt[-1] == tokens.START_OF_SPEECH and first.speaker_emb.shape == (128,)
    assert [p.weight for p in found[:2]] == [1.0, 2.0]


def test_pairs_of_another_layout_or_floor_are_refused_in_one_line(world):
    model, tok, folder = world
    for extra, words in ((["data.repeat_short_texts=true"], "laid out"),
                         (["dpo.stop_floor=0.001"], "stop_floor")):
        data = PairsData(dpo_cfg(folder, *extra), tok)
        with pytest.raises(DataError, match=words):
            data.setup()


def test_the_objective_needs_a_pairs_file_and_stop_row_needs_lora():
    with pytest.raises(ConfigError, match="objective dpo needs dpo.pairs"):
        load_config(TrainConfig, None, [*REQUIRED, "objective=dpo"])
    with pytest.raises(ConfigError, match="stop_row"):
        load_config(TrainConfig, None, [*REQUIRED, "mode=full", "lora.stop_row=true"])
    with pytest.raises(ConfigError, match="beta"):
        load_config(TrainConfig, None, [*REQUIRED, "objective=dpo", "dpo.pairs=x", "dpo.beta=0"])
    with pytest.raises(ConfigError, match="stop_floor"):
        load_config(TrainConfig, None, [*REQUIRED, "objective=dpo", "dpo.pairs=x", "dpo.stop_floor=0.5"])


def test_the_first_step_on_pairs_of_the_same_model_is_log_2(world):
    """Policy and reference are the same weights: every anchored ratio is 0, so the loss is
    log 2 whatever the pairs. Pairs whose references came from another likelihood, or a
    loss that ignored them, would not give it."""
    module, batch = module_and_batch(world)
    with torch.no_grad():
        loss, figures = dpo.pair_loss(module, batch)
    assert float(loss) == pytest.approx(math.log(2), abs=1e-4)
    assert float(figures["chosen_ratio"]) == pytest.approx(0, abs=1e-4)
    assert float(figures["rejected_ratio"]) == pytest.approx(0, abs=1e-4)
    assert float(figures["margin"]) != 0  # the raw margin is not anchored


def test_steps_widen_the_anchored_margin_and_move_the_end_of_speech_row(world):
    module, batch = module_and_batch(world, "optim.lr=0.01")
    eos = module.kani.lm_head
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=0.01)
    start = trajectory.head_rows(module.kani, torch.tensor([tokens.END_OF_SPEECH])).detach().clone()
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss, figures = dpo.pair_loss(module, batch)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.05 and float(figures["accuracy"]) == 1.0
    moved = trajectory.head_rows(module.kani, torch.tensor([tokens.END_OF_SPEECH])).detach()
    assert not torch.allclose(moved, start) and eos is module.kani.lm_head
    # the base LM head row itself stays frozen: the trained row is PEFT's
    frozen = module.kani.lm_head.token_adapter.base_layer.weight[tokens.END_OF_SPEECH]
    assert torch.equal(frozen, start[0])


def test_pair_weights_weigh_the_loss(world):
    module, batch = module_and_batch(world)
    gen = torch.Generator().manual_seed(0)
    shifted = dict(batch, ref=batch["ref"] + torch.randn(len(batch["ref"]), generator=gen))
    with torch.no_grad():
        weighted = float(dpo.pair_loss(module, shifted)[0])
        module.cfg.dpo.weights = False
        plain = float(dpo.pair_loss(module, shifted)[0])
    assert weighted != pytest.approx(plain, abs=1e-6)


def test_a_collapsing_rejected_side_with_a_flat_chosen_side_warns(caplog):
    meter = dpo.PreferenceMeter()
    one = {k: torch.tensor(0.0) for k in dpo.FIGURES}
    meter.add({**one, "chosen_ratio": torch.tensor(0.02), "rejected_ratio": torch.tensor(-2.5)})
    with caplog.at_level(logging.WARNING, logger="kani_adapt.train"):
        out = meter.flush()
    assert out["hacking"] == 1.0 and "reward hacking" in caplog.text
    meter.add({**one, "chosen_ratio": torch.tensor(0.8), "rejected_ratio": torch.tensor(-2.5)})
    assert meter.flush()["hacking"] == 0.0
    assert not dpo.hacking(0.0, -0.5)


def test_validation_holds_out_whole_groups():
    pair = lambda g: pairs_file.Pair(g, [tokens.START_OF_SPEECH], None, None)  # noqa: E731
    found = [pair(f"g{k // 2}") for k in range(20)]
    train, val = split(found, 0.2, 0)
    assert len(val) == 4 and not {found[i].group for i in train} & {found[i].group for i in val}
