"""Tokenizer fertility (Step 0): figures per tag beside English and German, and the gate that
stops LoRA on a script the tokenizer lacks (Ge'ez, which the offline byte tokenizer spells in
bytes, as LFM2's tokenizer does for scripts outside its vocabulary)."""
import pytest

from kani_adapt.text import fertility
from kani_adapt.core.errors import DataError

AMHARIC = ["ሰላም ለዓለም እንዴት ነህ ዛሬ", "አዲስ አበባ ትልቅ ከተማ ናት", "ቡና መጠጣት እወዳለሁ"]


@pytest.fixture(scope="module")
def tok():
    from tests.helpers import tiny_generator

    return tiny_generator()[1]


def test_figures_count_words_characters_and_byte_pieces(tok):
    f = fertility.measure(["abc dé"], tok)
    # "abc dé": bytes a b c ' ' d and the two bytes of é -> 7 tokens, the 2 of é byte pieces
    assert (f.words, f.chars, f.tokens, f.byte_tokens) == (2, 5, 7, 2)
    assert f.tokens_per_word == 3.5 and f.byte_fallback_share == pytest.approx(2 / 7)


def test_a_script_the_tokenizer_lacks_is_stopped_and_german_is_not(tok):
    figures = fertility.report({"am": AMHARIC, "de_hessian": ["Ich habe 3 Katzen und zwei Hunde."]},
                               tok)
    assert figures["tags"]["am"]["byte_fallback_share"] > 0.8
    assert figures["tags"]["de_hessian"]["byte_fallback_share"] < 0.1
    assert set(figures["reference"]) == {"en", "de"}
    problems = fertility.gate(figures)
    assert len(problems) == 1 and problems[0].startswith("tag am:")
    assert "continued pretraining" in problems[0] and "does not do that yet" in problems[0]
    assert fertility.gate(figures, max_byte_fallback=0, max_fertility_ratio=0) == []
    # tokens per word alone also stops it when far above the references
    assert fertility.gate(figures, max_byte_fallback=0, max_fertility_ratio=1.2)[0].startswith("tag am:")


def _dataset(tmp_path, texts, tag):
    import numpy as np

    from kani_adapt import dataset

    rows = []
    for s in range(2):
        emb = np.ones(128, np.float32) / np.sqrt(128)
        for k, text in enumerate(texts):
            rows.append(dataset.make_row(text, tag, np.zeros((4, 4), np.int64), f"spk{s}", emb,
                                         emb, 0.32, f"s/{s}/{k}"))
    path = tmp_path / "hf"
    dataset.to_table(rows).save_to_disk(str(path))
    return path


@pytest.mark.slow
def test_lora_training_stops_on_a_byte_fallback_script_and_continued_pretraining_does_not(
        tmp_path, tok):
    from kani_adapt.config.load import load_config
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.training.data import GeneratorData

    path = _dataset(tmp_path, AMHARIC, "am")

    def data(mode):
        cfg = load_config(TrainConfig, None, [f"data.train={path}", "model.init=tiny",
                                              f"run_dir={tmp_path / mode}", f"mode={mode}",
                                              "data.num_workers=0", "data.val_speakers=1"])
        return GeneratorData(cfg, tok)
    with pytest.raises(DataError, match=r"tag am: the tokenizer falls back to bytes"):
        data("lora").setup("fit")
    ok = data("continue_pretrain")
    ok.setup("fit")
    assert ok.stats["fertility"]["tags"]["am"]["byte_fallback_share"] > 0.8
