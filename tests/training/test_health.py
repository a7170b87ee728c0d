"""Training health, for every objective: a micro-batch without a scored target gives a zero
loss (not NaN) and is counted; non-finite losses, a lopsided audio/text gradient and text
embeddings turning away from their start each give a warning line and a figure."""
import logging

import torch

from kani_adapt import tokens
from kani_adapt.config.load import load_config
from kani_adapt.models.generator.batch import collate
from kani_adapt.training import health
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.module import GeneratorModule
from tests.helpers import REQUIRED, example_batch, tiny_generator


def module_of(*overrides):
    model, tok = tiny_generator()
    module = GeneratorModule(load_config(TrainConfig, None, [*REQUIRED, *overrides]), model)
    logged = {}
    module.log = lambda key, value, **kw: logged.__setitem__(key, float(value))
    return module, tok, logged


def test_a_micro_batch_without_targets_gives_zero_loss_and_is_counted(caplog):
    module, tok, logged = module_of("mode=full")
    batch = collate(example_batch(tok), torch.randn(2, 128))
    batch["labels"] = torch.full_like(batch["labels"], tokens.IGNORE_INDEX)
    loss = module.training_step(batch, 0)
    assert torch.isfinite(loss) and float(loss) == 0.0
    loss.backward()  # a zero loss still backpropagates (every rank takes the same steps)
    module.loss_watch.add(torch.tensor(float("nan")))
    with caplog.at_level(logging.WARNING, logger="kani_adapt.train"):
        module._log_health()
    assert logged["health/zero_loss_steps"] == 1 and logged["health/nonfinite_loss_steps"] == 1
    assert "not finite" in caplog.text and "exactly 0" in caplog.text


def test_gradient_balance_is_measured_and_a_lopsided_one_warns(caplog):
    module, tok, logged = module_of("mode=full")
    batch = collate(example_batch(tok), torch.randn(2, 128))
    module.training_step(batch, 0).backward()
    balance = health.grad_balance(module.kani)
    assert balance["grad_norm_audio"] > 0 and balance["grad_norm_text"] > 0
    weight = module.kani.get_input_embeddings().weight
    weight.grad[:tokens.TEXT_VOCAB_SIZE] *= 1e-4  # the text side starves
    module.balance = health.grad_balance(module.kani)
    with caplog.at_level(logging.WARNING, logger="kani_adapt.train"):
        module._log_health()
    assert logged["health/grad_ratio"] > health.GRAD_RATIO_BOUND and "one side starves" in caplog.text
    assert health.grad_balance(tiny_generator()[0]) is None  # no gradient yet: nothing to say


def test_full_fine_tunes_log_the_text_embeddings_cosine_to_their_start(caplog):
    module, _, logged = module_of("mode=full")
    module._log_health()
    assert logged["health/text_emb_cos_to_init"] > 0.999
    weight = module.kani.get_input_embeddings().weight
    with torch.no_grad():
        weight[:tokens.TEXT_VOCAB_SIZE] = torch.randn_like(weight[:tokens.TEXT_VOCAB_SIZE])
    with caplog.at_level(logging.WARNING, logger="kani_adapt.train"):
        module._log_health()
    assert logged["health/text_emb_cos_to_init"] < health.COSINE_ALARM
    assert "text embeddings at cosine" in caplog.text
    for extra in ([], ["lora.stop_row=true"]):  # a frozen table (one trained row beside it)
        lora_module, _, _ = module_of("mode=lora", *extra)
        assert lora_module.drift is None and health.embedding(lora_module.kani) is None
