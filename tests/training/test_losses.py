import math

import numpy as np
import torch

from kani_adapt import tokens
from kani_adapt.training.losses import causal_lm_losses, perplexity, target_groups


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
