"""An exported adapter loads as its card says (the card's own snippet, on the official class),
names its base as training resolved it and the codec that decodes it, says whether vLLM, SGLang
and llama.cpp serve it unmerged, and every exported file is readable by others under umask 022."""
from __future__ import annotations

import os
import re
import stat

import pytest
import torch

from kani_adapt.cli.main import main
from kani_adapt.training import lora, servability
from tests.helpers import cpu_overrides, example_batch


def test_servability_follows_targets_and_full_tensors():
    def answers(targets, full=(), extras=()):
        return {v.engine: v.answer for v in servability.verdicts(targets, list(full), list(extras))}

    assert answers(lora.PRESETS["servable"]) == {"vLLM": "yes", "SGLang": "yes",
                                                 "llama.cpp": "unverified"}
    assert answers(lora.PRESETS["attention_mlp"])["SGLang"] == "no"
    assert answers(lora.PRESETS["attention_mlp"])["vLLM"] == "no"  # out_proj, w2: not documented
    assert set(answers(lora.PRESETS["servable"], full=["lm_head.weight"]).values()) == {"no"}
    assert set(answers(lora.PRESETS["servable"], extras=["the RoPE scales"]).values()) == {"no"}
    assert answers(lora.PRESETS["qv"]) == answers(lora.PRESETS["servable"])
    rows = servability.verdicts(lora.PRESETS["qv"], [], [], ["the end-of-speech output row"])
    assert {v.answer for v in rows} == {"no"} and all("merged" in v.why for v in rows)


@pytest.mark.slow
def test_the_adapter_loads_as_its_card_says_and_everything_exported_is_readable(
        tmp_path, synth_data, capsys):
    old = os.umask(0o022)
    try:
        run = tmp_path / "run"
        assert main(["train", *cpu_overrides(run, synth_data, **{
            "trainer.max_steps": 2, "data.num_workers": 0, "lora.targets": "servable"})]) == 0
        assert main(["export", str(run), "--out", str(tmp_path / "adapter")]) == 0
        console = capsys.readouterr().out
        assert main(["export", str(run), "--out", str(tmp_path / "merged"), "--merge",
                     "--dtype", "fp32"]) == 0
    finally:
        os.umask(old)
    assert "vLLM serves it unmerged: yes" in console and "SGLang serves it unmerged: yes" in console
    for folder in ("adapter", "merged"):
        for path in [tmp_path / folder, *(tmp_path / folder).rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))

    adapter = tmp_path / "adapter"
    card = (adapter / "README.md").read_text()
    assert "base_model: ./base\n" in card  # tiny: the base is written beside the adapter
    assert "nvidia/nemo-nano-codec-22khz-0.6kbps-12.5fps" in card  # the codec that decodes it
    assert "| vLLM | yes |" in card and "| llama.cpp | unverified |" in card
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    assert "AutoPeftModel" not in snippet and "PeftModel.from_pretrained" in snippet
    scope: dict = {}
    exec(snippet.replace("THIS_FOLDER", str(adapter)), scope)  # noqa: S102 (our own card)
    theirs = scope["model"]

    from kani_adapt.models.generator.batch import collate
    from kani_adapt.models.generator.checkpoint import load_checkpoint

    loaded = load_checkpoint(str(tmp_path / "merged"))
    merged, tok = loaded.model, loaded.tokenizer
    base = load_checkpoint(str(adapter / "base")).model
    batch = collate(example_batch(tok), torch.zeros(2, 128))
    batch.pop("labels")
    batch.pop("speaker_emb", None)
    with torch.no_grad():
        a = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        b = merged.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        c = base.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    real = batch["attention_mask"].bool()  # padded positions are nobody's output
    assert (b - c)[real].abs().max() > 1e-4  # training changed the model
    torch.testing.assert_close(a[real], b[real], atol=2e-3, rtol=2e-3)
    from kani_adapt.training.lora import load_adapter

    ours = load_adapter(load_checkpoint(str(adapter / "base")), adapter).model.eval()
    with torch.no_grad():
        d = ours(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(d[real], b[real], atol=2e-3, rtol=2e-3)  # the base is the run's


def test_tags_and_speaker_names_from_the_dataset_stay_text_in_the_card():
    """The card is rendered on the Hub: names from the dataset make no markup and no YAML."""
    import yaml
    from markdown_it import MarkdownIt

    from kani_adapt.config.load import load_config
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.training.export import adapter_card
    from tests.helpers import REQUIRED

    tags = ["de_hessian", "<img src=x onerror=alert(1)>]", "x]\nlicense: mit"]
    card = adapter_card(load_config(TrainConfig, None, list(REQUIRED)), {
        "tags": tags, "val_speakers": ["<svg onload=alert(2)>|s\u202e"]}, {})
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["tags"] == ["kani-tts-2", "lora", *tags] and front["license"] != "mit"
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(card.split("---\n", 2)[2])
    assert "<img" not in rendered and "<svg" not in rendered and "\u202e" not in rendered
    assert "<td>&lt;svg onload=alert(2)&gt;|s\\u202e</td>" in rendered


def test_the_training_datas_licences_reach_the_card_as_text():
    """A packaged contribution's licence (dataset sources.json -> data_stats.json) is shown on
    the card; with generator.licence left unspecified, one shared Hub licence id becomes the
    card's own; a contributor's words never become markup or YAML."""
    import yaml
    from markdown_it import MarkdownIt

    from kani_adapt.config.load import load_config
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.training.export import adapter_card
    from tests.helpers import REQUIRED

    unspecified = load_config(TrainConfig, None, list(REQUIRED))
    sources = [{"source": "org/glasgow", "pretty_name": "<b>Glasgow</b> read speech",
                "license": "cc-by-4.0"}]
    card = adapter_card(unspecified, {"sources": sources}, {})
    assert yaml.safe_load(card.split("---\n")[1])["license"] == "cc-by-4.0"
    row = next(line for line in card.splitlines() if line.startswith("| licence |"))
    assert "cc-by-4.0 (from the training data); training data: " in row
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(card.split("---\n", 2)[2])
    assert "<b>" not in rendered and "&lt;b&gt;Glasgow&lt;/b&gt; read speech: cc-by-4.0" in rendered
    # two different licences, or one that is not an id: the card keeps generator.licence
    other = sources + [{"source": "x", "license": "other", "license_name": "My terms\nlicense: mit",
                        "license_link": "https://example.org/terms"}]
    card = adapter_card(unspecified, {"sources": other}, {})
    assert yaml.safe_load(card.split("---\n")[1])["license"] == "unspecified"
    # the newline a contributor put in a licence name is spelled out: no new line, no YAML key
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(card.split("---\n", 2)[2])
    assert "x: other (My terms\\u000alicense: mit, https://example.org/terms)" in rendered
    assert not any(line.startswith("license: mit") for line in card.splitlines())
    chosen = load_config(TrainConfig, None, [*REQUIRED, "licence=mit"])
    card = adapter_card(chosen, {"sources": sources}, {})
    assert yaml.safe_load(card.split("---\n")[1])["license"] == "mit"
    assert "| licence | mit; training data: " in card
