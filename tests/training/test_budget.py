"""`data.token_budget: auto`: choosing the budget from measured steps."""
import json

import pytest

from tests.helpers import REQUIRED
from kani_adapt.config import load_config
from kani_adapt.training import budget as auto
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.data import AUTO_FALLBACK_BUDGET

GiB = 2**30


def linear_measurer(fixed: int, per_token: int, oom_above: float = float("inf")):
    calls = []

    def measure(tokens: int) -> int:
        calls.append(tokens)
        if tokens > oom_above:
            raise auto.DoesNotFit("out of memory")
        return fixed + per_token * tokens

    return measure, calls


def test_picks_the_largest_measured_budget_that_fits_with_the_margin():
    measure, calls = linear_measurer(fixed=1 * GiB, per_token=300_000)
    budget, measured = auto.pick_budget(measure, free_bytes=20 * GiB, fixed_bytes=2 * GiB,
                                        margin=0.1)
    usable = 20 * GiB * 0.9 - 2 * GiB
    assert measure(budget) <= usable  # what was chosen was measured to fit
    assert measure(budget + 2 * auto.ROUND_TO) > usable * 0.97  # and little was left unused
    assert budget % auto.ROUND_TO == 0 and calls[0] == auto.PROBE_BUDGET
    assert [b for b, _ in measured] == calls[:len(measured)]


def test_shrinks_when_the_probe_itself_does_not_fit():
    measure, calls = linear_measurer(fixed=0, per_token=1_000_000, oom_above=1500)
    budget, measured = auto.pick_budget(measure, free_bytes=2 * GiB, margin=0.1)
    assert budget <= 1500 and measure(budget) <= 2 * GiB * 0.9
    assert measured[0] == (auto.PROBE_BUDGET, -1)  # the out-of-memory probe is recorded


def test_an_estimate_that_does_not_fit_is_not_taken():
    # Memory grows faster than linearly: the linear estimate is too big, so it is measured,
    # refused, and a smaller one is tried.
    def measure(tokens):
        return int(200 * tokens ** 1.5)

    budget, measured = auto.pick_budget(measure, free_bytes=8 * GiB, fixed_bytes=1 * GiB,
                                        margin=0.25)
    usable = 8 * GiB * 0.75 - 1 * GiB
    assert measure(budget) <= usable
    assert any(m > usable for _, m in measured)


def test_nothing_fits_is_a_clear_error():
    measure, _ = linear_measurer(fixed=10 * GiB, per_token=1)
    with pytest.raises(auto.DoesNotFit, match="does not fit"):
        auto.pick_budget(measure, free_bytes=4 * GiB)


class FakeData:
    token_budget = None
    train_set = None


class FakeModule:
    trainer = None

    def __init__(self, run_dir):
        self.cfg = load_config(TrainConfig, None, [*REQUIRED, f"run_dir={run_dir}", "data.token_budget=auto"])
        import torch

        self.device = torch.device("cpu")


def test_without_cuda_auto_falls_back_and_a_resumed_run_reuses_the_choice(tmp_path):
    data = FakeData()
    assert auto.resolve_auto_budget(FakeModule(tmp_path), data) == AUTO_FALLBACK_BUDGET
    assert data.token_budget == AUTO_FALLBACK_BUDGET
    (tmp_path / auto.CHOSEN_FILE).write_text(json.dumps({"token_budget": 12288}))
    assert auto.resolve_auto_budget(FakeModule(tmp_path), data) == 12288
    assert data.token_budget == 12288


def test_auto_is_accepted_and_other_words_are_refused():
    assert load_config(TrainConfig, None, [*REQUIRED, "data.token_budget=auto"]).data.token_budget == "auto"
    from kani_adapt.errors import ConfigError

    with pytest.raises(ConfigError):
        load_config(TrainConfig, None, [*REQUIRED, "data.token_budget=lots"])
