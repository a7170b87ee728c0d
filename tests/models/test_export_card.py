"""The adapter card records the training choices that change what the model learned."""
from tests.helpers import REQUIRED
from kani_adapt.config import load_config
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.export import adapter_card


def card(*overrides):
    return adapter_card(load_config(TrainConfig, None, [*REQUIRED, *overrides]), {"tags": ["de"]}, {})


def test_card_says_repeated_frames_were_dropped_by_default():
    assert "| repeated frames | dropped (data.drop_repeated_frames=true)" in card()


def test_card_says_when_repeated_frames_were_kept():
    text = card("data.drop_repeated_frames=false")
    assert "| repeated frames | kept (data.drop_repeated_frames=false)" in text
    assert "dropped" not in text
