import math

import numpy as np
import pytest
import torch

from tests.helpers import REQUIRED
from kani_adapt import tokens
from kani_adapt.training.losses import (causal_lm_losses, chunked_token_losses, perplexity,
                                        target_groups, token_losses)


def test_groups_partition_the_labelled_tokens():
    ex = tokens.build_example([tokens.BOS, 40, 41], np.arange(12).reshape(3, 4))
    labels = torch.tensor([ex.labels + [tokens.IGNORE_INDEX] * 3])
    groups = target_groups(labels)
    total = sum(m.long() for m in groups.values())
    assert torch.equal(total, (labels != tokens.IGNORE_INDEX).long())
    assert all(int(groups[f"cb{c}"].sum()) == 3 for c in range(4))
    assert int(groups["text"].sum()) == 4  # BOS, 40, 41, EOT


def test_losses_match_cross_entropy_and_groups_are_their_parts():
    torch.manual_seed(0)
    ex = tokens.build_example([tokens.BOS, 40], np.arange(8).reshape(2, 4))
    labels = torch.tensor([ex.labels])
    logits = torch.randn(1, labels.shape[1], tokens.VOCAB_SIZE)
    out = causal_lm_losses(logits, labels)
    ref = torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:])
    torch.testing.assert_close(out["loss"], ref)
    counts = {k: int(m.sum()) for k, m in target_groups(labels[:, 1:]).items()}
    weighted = sum(out[f"loss_{k}"] * n for k, n in counts.items() if n) / sum(counts.values())
    torch.testing.assert_close(weighted, ref)
    assert perplexity(0.0) == 1.0 and math.isfinite(perplexity(1e9))


@pytest.mark.parametrize("mode", ["lora", "continue_pretrain"])
def test_chunked_loss_gives_the_plain_loss_groups_and_gradients(mode):
    from kani_adapt.config.load import load_config
    from kani_adapt.models.generator.batch import collate
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.training.module import GeneratorModule
    from tests.helpers import example_batch, tiny_generator

    def run(chunk: int):
        torch.manual_seed(0)
        model, tok = tiny_generator()
        cfg = load_config(TrainConfig, None, [*REQUIRED, f"mode={mode}", "lora.dropout=0.0",
                                              f"model.loss_chunk={chunk}"])
        module = GeneratorModule(cfg, model).train()
        if mode == "lora":  # non-zero adapters, so that LoRA gradients reach the A matrices
            with torch.no_grad():
                for name, p in module.net.named_parameters():
                    if "lora_B" in name:
                        p.normal_(0, 0.02)
        torch.manual_seed(1)
        out = module.forward_losses(collate(example_batch(tok), torch.randn(2, 128)))
        out["loss"].backward()
        grads = {n: p.grad for n, p in module.net.named_parameters() if p.grad is not None}
        return {k: v.detach() for k, v in out.items()}, grads

    (plain, plain_grads), (chunked, chunked_grads) = run(0), run(7)  # 7: a ragged last slice
    assert plain.keys() == chunked.keys() and len(plain) >= 6
    for key in plain:
        torch.testing.assert_close(chunked[key], plain[key], rtol=1e-5, atol=0, msg=key)
    assert plain_grads and plain_grads.keys() == chunked_grads.keys()
    for name, grad in plain_grads.items():
        # Relative to the gradient's size: slices sum the head's gradient in another order.
        # A RoPE scale's gradient is one sum of terms of both signs, so fp32 rounding shows
        # more in it (2e-5 measured); every weight matrix stays within 1e-5.
        error = float((chunked_grads[name] - grad).norm() / grad.norm())
        bound = 1e-5 if grad.ndim else 5e-5
        assert grad.norm() > 0 and error < bound, f"{name}: relative error {error:.2e}"


def test_chunked_losses_never_hold_more_than_one_slice_of_logits():
    """Backward recomputes each slice: the saved tensors are hidden-sized, not vocab-sized."""
    torch.manual_seed(0)
    head = torch.nn.Linear(16, tokens.VOCAB_SIZE, bias=False)
    hidden = torch.randn(1, 64, 16, requires_grad=True)
    labels = torch.randint(0, tokens.VOCAB_SIZE, (1, 64))
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t,
                                                  lambda t: t):
        per_token = chunked_token_losses(hidden, head, labels, chunk=8)
    assert max(saved) < 8 * tokens.VOCAB_SIZE
    per_token.sum().backward()
    ref = token_losses(head(hidden), labels)
    torch.testing.assert_close(per_token, ref)
