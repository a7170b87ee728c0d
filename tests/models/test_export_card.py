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


def _listening(tmp_path, keep_all: bool):
    from kani_adapt.eval.report import write_json
    from kani_adapt.listen.analysis import analyse
    from kani_adapt.listen.results import card_section
    from tests.listen.panel import panel_material, simulate

    rows = simulate(listeners=3, items=3, sleepy=1)  # listener-3 answers at random
    write_json(tmp_path / "listening.json", analyse(rows, panel_material(3), 50, keep_all=keep_all))
    return card_section(tmp_path / "listening.json")


def test_the_card_says_who_was_kept_although_they_failed_the_attention_checks(tmp_path):
    kept = _listening(tmp_path, keep_all=True)
    assert "kept although they failed the attention checks (`--keep-all`): listener-3" in kept
    assert "left out after the attention checks" not in kept
    assert "left out after the attention checks: listener-3" in _listening(tmp_path, keep_all=False)


def test_export_prints_the_serving_tables_rows_and_no_listening_rows(tmp_path):
    from kani_adapt.training import lora, servability
    from kani_adapt.training.export import serving_lines

    served = servability.verdicts(lora.PRESETS["servable"], [], [])
    text = adapter_card(load_config(TrainConfig, None, REQUIRED), {"tags": ["de"]}, {},
                        served=served, listening=_listening(tmp_path, keep_all=False))
    assert "| recording |" in text  # the listening tables have three columns too
    (tmp_path / "README.md").write_text(text)
    lines = serving_lines(tmp_path)
    assert [line.split(" serves it unmerged: ")[0] for line in lines] == ["vLLM", "SGLang",
                                                                          "llama.cpp"], lines


def test_the_cards_base_model_is_portable_and_says_where_a_local_base_was(tmp_path):
    cfg = load_config(TrainConfig, None, REQUIRED)
    adapter = tmp_path / "export" / "adapter"
    beside = adapter_card(cfg, {}, {}, base=str(adapter / "base"), folder=adapter)
    assert "base_model: ./base\n" in beside and 'adapter / "base"' in beside  # the snippet's too
    assert f"`{adapter / 'base'}` where it was exported" in beside
    elsewhere = adapter_card(cfg, {}, {}, base=str(tmp_path / "ckpt"), folder=adapter)
    assert "base_model: ../../ckpt\n" in elsewhere and f"`{tmp_path / 'ckpt'}`" in elsewhere
    front = elsewhere.split("---")[1]
    assert str(tmp_path) not in front  # no absolute path in the card's metadata
    hub = adapter_card(cfg, {}, {}, base="nineninesix/kani-tts-2-en", folder=adapter)
    assert "base_model: nineninesix/kani-tts-2-en\n" in hub and "where it was exported" not in hub
