"""A recipe's `tags` is the one home of a tag's facts: one entry reaches the data tools, the
scorers of both eval sections, the short probes and the listening test; the keys that held them
before say where they went; a stage is redone only when a fact it reads changes."""
import pytest

from kani_adapt.core.errors import ConfigError
from kani_adapt.recipes.schema import load_recipe
from kani_adapt.text.tags import Tag, only

HESSIAN = ("tags:\n  de_hessian: {language: de, description: German with a Hessian accent,"
           " accent_label: hessian}\n  gsw_zurich: {language: gsw, asr_language: de}\n"
           "  en: English as spoken in England\n")


def _recipe(tmp_path, text: str, name: str = "r.yaml"):
    path = tmp_path / name
    path.write_text("name: r\ngenerator: {model: {init: tiny}}\n"
                    "data: {ingest: {sources: [{path: rec, tag: gsw_zurich}]}}\n" + text)
    return path


def test_one_tags_entry_reaches_every_section_that_reads_a_tag(tmp_path):
    r = load_recipe(_recipe(tmp_path, HESSIAN))
    assert r.tags["en"].description == "English as spoken in England"  # the plain-string form
    assert r.eval.tags == r.tags  # eval.json keeps every fact (the listening test reads it)
    assert r.data.tags == only(r.tags, "language", "asr_language")  # what the data tools read
    assert r.generator.eval.tags == only(r.tags, "language", "asr_language", "accent_label")
    assert r.generator.eval.tags["de_hessian"] == Tag("de", "", "", "hessian")


def test_each_consumer_reads_the_tag_s_facts_from_the_recipe(tmp_path):
    from data_tools.records import Utterance
    from data_tools.stages import transcribe
    from data_tools.stages.filter import text_frontend
    from kani_adapt.eval.evalset import EvalItem
    from kani_adapt.eval.probes import PROBES, probe_items
    from kani_adapt.scorers.registry import Setup
    from kani_adapt.text.tags import accent_labels, facts

    r = load_recipe(_recipe(tmp_path, HESSIAN))
    # data tools: the filter reads Swiss German texts as German-less gsw; Whisper is told de
    front = text_frontend(r.data.filter, r.data.tags)
    assert front.language_for("gsw_zurich") == "gsw" and front.language_for("de_hessian") == "de"
    utt = Utterance(id="a", audio="a.wav", duration=1.0, speaker="s", tag="gsw_zurich", text="")
    assert transcribe._asr_language(utt, r.data.tags) == "de"
    # both eval sections' scorers: ASR language, CER language, accent labels
    for tags in (r.eval.tags, r.generator.eval.tags):
        setup = Setup(r.eval.scorers, tags)
        assert (setup.asr_language("gsw_zurich"), setup.language("gsw_zurich")) == ("de", "gsw")
        assert accent_labels(setup.tags) == {"de_hessian": "hessian"}
    # the short probes: a tag named otherwise, in a language that has probes
    item = EvalItem(id="1", text="x", speaker="s", tag="hessisch", vector=[0.0] * 128)
    probes, _ = probe_items([item], {}, load_recipe(
        _recipe(tmp_path, "tags: {hessisch: {language: de}}\n", "h.yaml")).eval.tags)
    assert [p.text for p in probes] == list(PROBES["de"])
    # the listening test: eval.json keeps every fact (kani_adapt/eval/evaluate.py)
    kept = facts({"de_hessian"}, r.eval.tags)
    assert kept["de_hessian"]["description"] == "German with a Hessian accent"


def test_a_section_s_own_tags_are_refused_in_a_recipe(tmp_path):
    with pytest.raises(ConfigError, match=r"r.yaml: eval.tags: a tag's facts are given once, in "
                                          r"the recipe's tags \(wired to data, generator.eval"):
        load_recipe(_recipe(tmp_path, "eval: {tags: {de: standard German}}\n"))
    for key in ("data.tags.de.language=de", "generator.eval.tags={}"):
        with pytest.raises(ConfigError, match=rf"{key.split('.tags')[0]}.tags: a tag's facts"):
            load_recipe(_recipe(tmp_path, ""), [key])


@pytest.mark.parametrize("key, value, fact", [
    ("data.transcribe.languages", "{de_hessian: de}", "language"),
    ("data.filter.language", "de", "language"),
    ("eval.scorers.languages", "{de_hessian: de}", "language"),
    ("eval.scorers.accent_labels", "{de_hessian: hessian}", "accent_label"),
    ("generator.eval.scorers.languages", "{sw: sw}", "language"),
])
def test_a_former_tag_key_in_a_recipe_names_the_new_home(tmp_path, key, value, fact):
    path = _recipe(tmp_path, "")
    with pytest.raises(ConfigError) as err:
        load_recipe(path, [f"{key}={value}"])
    section, _, old = key.rpartition(".")
    assert str(err.value) == (f"{path}.{section}: unknown key '{old}'; it is now "
                              f"{path}.tags.<tag>.{fact}")


def test_standalone_configs_keep_a_tags_section_of_their_own(tmp_path):
    from data_tools.config import load_config as load_data
    from kani_adapt.config.load import load_config
    from kani_adapt.eval.config import EvalConfig
    from kani_adapt.training.config import TrainConfig

    cfg = load_config(EvalConfig, None, ["tags={de_hessian: {accent_label: hessian}}"])
    assert cfg.tags["de_hessian"].accent_label == "hessian"
    with pytest.raises(ConfigError, match=r"config.scorers: unknown key 'languages'; it is now "
                                          r"config.tags.<tag>.language"):
        load_config(EvalConfig, None, ["scorers.languages={sw: sw}"])
    with pytest.raises(ConfigError, match=r"eval.scorers: unknown key 'accent_labels'; it is now "
                                          r"config.eval.tags.<tag>.accent_label"):
        load_config(TrainConfig, None, ["data.train=d", "eval.scorers.accent_labels={a: b}"])
    data = tmp_path / "data.yaml"
    data.write_text("ingest: {sources: [{path: rec, tag: sw}]}\ntags: {sw: {language: sw}}\n")
    assert load_data(data).tags["sw"].language == "sw"
    with pytest.raises(ConfigError, match=r"data.yaml.transcribe: unknown key 'languages'; it is "
                                          r"now .*data.yaml.tags.<tag>.language"):
        load_data(data, ["transcribe.languages={sw: sw}"])


def test_changing_a_description_redoes_only_the_stage_that_shows_it(tmp_path):
    from kani_adapt.recipes.reruns import flatten
    from kani_adapt.recipes.runner import plan

    def hashes(*overrides):  # each stage's own settings (what reruns it besides its inputs)
        r = load_recipe(_recipe(tmp_path, HESSIAN), list(overrides))
        return {s.name: flatten(s.settings) for s in plan(r, {})}

    before = hashes()
    described = hashes("tags.de_hessian.description=Hessian German")
    assert {n for n in before if before[n] != described[n]} == {"eval"}  # eval.json keeps it
    relanguaged = hashes("tags.gsw_zurich.asr_language=gsw")
    assert {n for n in before if before[n] != relanguaged[n]} >= {"prepare", "train", "eval"}


def test_a_training_run_saved_with_the_former_keys_reopens_with_its_tags(tmp_path):
    import yaml

    from kani_adapt.config.load import load_saved_config
    from kani_adapt.training.config import TrainConfig

    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump({"data": {"train": "d"}, "model": {"init": "tiny"},
                                     "eval": {"scorers": {"asr": "w", "languages": {"sw": "sw", "gsw": "de"},
                                                          "accent_labels": {"sw": "coast"}}}}))
    cfg = load_saved_config(TrainConfig, saved)
    assert cfg.eval.tags == {"sw": Tag(language="sw", accent_label="coast"),
                             "gsw": Tag(language="de")}
    assert cfg.eval.scorers.asr == "w"
