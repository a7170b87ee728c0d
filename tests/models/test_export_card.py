"""The adapter card records the training choices that change what the model learned."""
from tests.helpers import REQUIRED
from kani_adapt.config.load import load_config
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


def test_card_without_a_listening_test_says_how_to_run_one():
    assert "## Listening test\n\nNone yet: serve the eval to listeners with `kani-adapt listen" in card()


def test_card_carries_the_listening_results(tmp_path):
    from kani_adapt.eval.report import write_json
    from kani_adapt.listen.analysis import analyse
    from kani_adapt.listen.results import card_section
    from tests.listen.panel import panel_material, simulate

    write_json(tmp_path / "listening.json", analyse(simulate(listeners=3, items=3), panel_material(3), resamples=50))
    text = adapter_card(load_config(TrainConfig, None, REQUIRED), {"tags": ["de"]}, {},
                        listening=card_section(tmp_path / "listening.json"))
    assert "## Listening test\n\n3 listeners" in text and "None yet" not in text
    assert "Bradley-Terry" in text and "| recording |" in text and "MUSHRA" in text
