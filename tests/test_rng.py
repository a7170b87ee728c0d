"""One RNG-state saver: every generator comes back, in the current and the older layout."""
import io
import random

import numpy as np
import torch

from kani_adapt.core import rng


def draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)])


def test_restore_replays_every_generator_after_a_weights_only_round_trip():
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    buffer = io.BytesIO()
    torch.save(rng.capture(), buffer)
    first = draws()
    buffer.seek(0)
    rng.restore(torch.load(buffer, weights_only=True))
    assert draws() == first


def test_the_older_layout_with_a_python_tuple_still_restores():
    random.seed(2)
    state = rng.capture()
    state["python"], state["cuda"] = random.getstate(), None
    first = [random.random() for _ in range(3)]
    rng.restore(state)
    assert [random.random() for _ in range(3)] == first
