"""The text frontend: probe sets per language, the cleaning step, idempotence, the stored
identity, and the same ids for the same text in the dataset and in generate."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from kani_adapt import dataset, normalize
from kani_adapt.text import frontend

PROBES = {
    "de": [
        ("Ich habe 3 Katzen.", "Ich habe drei Katzen."),
        ("Am 3. Mai 2024 um 14:30", "Am dritten Mai zweitausendvierundzwanzig um vierzehn Uhr dreißig"),
        ("Der 2. Platz", "Der zweite Platz"),
        ("Geboren 03.05.1990", "Geboren dritter Mai neunzehnhundertneunzig"),
        ("Termin am 2024-05-03", "Termin am dritten Mai zweitausendvierundzwanzig"),
        ("um 9:05 Uhr", "um neun Uhr fünf"),
        ("um 20:00", "um zwanzig Uhr"),
        ("Ruf 0151 2345678 an", "Ruf null eins fünf eins zwei drei vier fünf sechs sieben acht an"),
        ("+49 69 123456", "plus vier neun sechs neun eins zwei drei vier fünf sechs"),
        ("Es kostet 5,50 €.", "Es kostet fünf Euro fünfzig Cent."),
        ("€ 12", "zwölf Euro"),
        ("1.000 Leute", "eintausend Leute"),
        ("Vorwahl 089", "Vorwahl null acht neun"),
        ("2,5 kg", "zwei Komma fünf Kilogramm"),
        ("25 % mehr", "fünfundzwanzig Prozent mehr"),
        ("-5 °C", "minus fünf Grad Celsius"),
        ("z. B. Nr. 7 bzw. Dr. Weber usw.",
         "zum Beispiel Nummer sieben beziehungsweise Doktor Weber und so weiter"),
        ("Müller & Söhne", "Müller und Söhne"),
    ],
    "en": [
        ("I have 3 cats.", "I have three cats."),
        ("On 3 May 2024", "On the third of May twenty twenty-four"),
        ("May 3rd, 2024", "May third, twenty twenty-four"),
        ("the 21st time", "the twenty-first time"),
        ("at 2:30 and 9:00", "at two thirty and nine o'clock"),
        ("at 14:05", "at fourteen oh five"),
        ("Call +44 141 496 0000", "Call plus four four one four one four nine six zero zero zero zero"),
        ("It costs $5.50.", "It costs five dollars fifty cents."),
        ("£3", "three pounds"),
        ("1,000 people", "one thousand people"),
        ("3.75 km", "three point seven five kilometres"),
        ("25% more", "twenty-five percent more"),
        ("In 1990", "In nineteen ninety"),
        ("Mr. Smith, e.g. No. 5", "Mister Smith, for example number five"),
    ],
    "sw": [
        ("Watu 3", "Watu tatu"),
        ("Watoto 21", "Watoto ishirini na moja"),
        ("Mwaka 2024", "Mwaka elfu mbili na ishirini na nne"),
        ("Tarehe 3 Mei 2024", "Tarehe tatu Mei elfu mbili na ishirini na nne"),
        ("saa 14:30", "saa kumi na nne na dakika thelathini"),
        ("Bei ni KSh 250", "Bei ni shilingi mia mbili na hamsini"),
        ("asilimia 25%", "asilimia ishirini na tano"),
        ("Piga 0712 345678", "Piga sifuri saba moja mbili tatu nne tano sita saba nane"),
        ("k.m. Bw. Juma", "kwa mfano Bwana Juma"),
        ("1,500 na 350", "elfu moja mia tano na mia tatu na hamsini"),
    ],
}


@pytest.mark.parametrize("language,written,said",
                         [(lang, w, s) for lang, pairs in PROBES.items() for w, s in pairs])
def test_probe_sets_read_as_said(language, written, said):
    assert normalize(written, language) == said
    assert normalize(said, language) == said  # applying it again changes nothing


def test_cleaning_removes_invisible_and_control_characters_and_folds_space():
    text = "\ufeffcafe\u0301\u200b  und\u00ad\u202e Tee\x00\n\tja"
    assert frontend.clean(text) == "caf\u00e9 und Tee ja"
    assert frontend.clean("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645") == \
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ is Persian spelling: kept


def test_a_language_without_readings_keeps_digits_and_warns_once(monkeypatch):
    monkeypatch.setattr(frontend, "_WARNED", set())
    with pytest.warns(UserWarning, match="no number readings for language 'qq'"):
        assert normalize("abc 12", "qq") == "abc 12"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert normalize("abc 13", "qq") == "abc 13"


def test_numbers_off_cleans_only():
    assert normalize("3  Katzen\u200b", "de", numbers=False) == "3 Katzen"


def test_override_wins_and_the_tag_picks_the_language():
    front = frontend.Frontend()
    assert front.apply("Ich habe 3 Katzen", "de_hessian") == "Ich habe drei Katzen"
    assert front.apply("089", "de", override="null acht neun\u200b") == "null acht neun"
    assert frontend.Frontend(language="de").apply("3", "hessisch") == "drei"
    assert frontend.Frontend(enabled=False).apply("3  x", "de") == "3  x"


def test_identity_round_trips_and_warns_on_another_version(tmp_path):
    front = frontend.Frontend(language="", languages={"xx_a": "de"}, numbers=True)
    frontend.write(tmp_path, front, ["en_glasgow"])
    data = json.loads((tmp_path / frontend.FILE).read_text())
    assert data["languages"] == {"en_glasgow": "en", "xx_a": "de"}
    assert data["version"] == frontend.VERSION and "num2words" in data["backend"]
    back = frontend.read(tmp_path)
    assert back.apply("3", "xx_a") == "drei" and back.apply("3", "en_glasgow") == "three"
    data["version"] = "0"
    (tmp_path / frontend.FILE).write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="version 0 was used"):
        frontend.read(tmp_path)


def test_normalize_command_prints_the_reading(capsys):
    from kani_adapt.cli.main import main

    assert main(["normalize", "--language", "de", "Am 3. Mai um 14:30"]) == 0
    assert capsys.readouterr().out == "Am dritten Mai um vierzehn Uhr dreißig\n"
    assert main(["normalize", "3"]) == 2  # no language: refused in one line
    assert "say which language" in capsys.readouterr().err


def _row(text, tag, override=""):
    codes = np.zeros((3, 4), dtype=np.int64)
    emb = np.ones(128, np.float32) / np.sqrt(128)
    return dataset.make_row(text, tag, codes, "spk", emb, emb, 0.24, "s/1", text_override=override)


@pytest.mark.slow
def test_same_text_gives_the_same_ids_in_the_dataset_and_in_generate(tmp_path):
    """A row written raw ("3 Katzen") by another tool, and the same text given to generate with
    the checkpoint the run exported: identical text ids, both spelled out."""
    from kani_adapt.models.generator.synthesize import text_prompts
    from kani_adapt.models.generator.tokenizer import encode_text
    from kani_adapt.training.config import TrainDataConfig
    from kani_adapt.training.data import tokenize_table
    from tests.helpers import tiny_generator

    model, tok = tiny_generator()
    rows = [_row("Ich habe 3 Katzen am 3. Mai.", "de_hessian"), _row("Nr. 089", "de_hessian", "null acht neun")]
    hf = tmp_path / "dataset" / "hf"
    dataset.to_table(rows).save_to_disk(str(hf))
    frontend.write(hf.parent, frontend.Frontend(), ["de_hessian"])
    table = dataset.read(str(hf))
    cfg = TrainDataConfig(train=str(hf), use_speaker_emb=False)
    part = tokenize_table(table, [0, 1], tok, cfg, str(hf))
    spoken = "Ich habe drei Katzen am dritten Mai."
    assert part.text_ids[0] == encode_text(tok, spoken, "de_hessian")
    assert part.texts[1] == "null acht neun"
    # the exported checkpoint carries the frontend; generate reads it back and agrees
    from kani_adapt.models.generator import checkpoint

    from kani_adapt.models.generator.bundle import Generator

    out = checkpoint.save_checkpoint(Generator(model, tok, text_frontend=frontend.Frontend()),
                                     tmp_path / "export", dtype="fp32", language_tags=["de_hessian"])
    loaded = checkpoint.load_checkpoint(str(out))
    assert loaded.text_frontend is not None
    assert text_prompts(loaded, ["Ich habe 3 Katzen am 3. Mai."], ["de_hessian"])[0] == \
        part.text_ids[0]


@pytest.mark.slow
def test_generate_uses_the_stored_frontend_not_the_tag(tmp_path):
    """A checkpoint whose frontend says tag 'hessisch' reads German: generate spells the number
    in German although the tag names no language."""
    from kani_adapt.models.generator import checkpoint
    from kani_adapt.models.generator.synthesize import text_prompts
    from kani_adapt.models.generator.tokenizer import encode_text
    from tests.helpers import tiny_generator

    from kani_adapt.models.generator.bundle import Generator

    model, tok = tiny_generator()
    front = frontend.Frontend(languages={"hessisch": "de"})
    out = checkpoint.save_checkpoint(Generator(model, tok, text_frontend=front), tmp_path / "ck",
                                     dtype="fp32")
    loaded = checkpoint.load_checkpoint(str(out))
    assert text_prompts(loaded, ["3 Katzen"], ["hessisch"])[0] == \
        encode_text(loaded.tokenizer, "drei Katzen", "hessisch")


def test_a_spoken_sidecar_becomes_the_rows_reading_and_is_accounted_for(tmp_path):
    import soundfile as sf

    from data_tools.inputs import inventory
    from data_tools.inputs.layouts import SourceConfig
    from data_tools.stages.filter import FilterConfig
    from data_tools.stages.filter import text_frontend
    from data_tools.inputs.layouts import discover_folder

    folder = tmp_path / "in" / "anna"
    folder.mkdir(parents=True)
    sf.write(folder / "a.wav", np.zeros(22050, np.float32), 22050)
    sf.write(folder / "b.wav", np.zeros(22050, np.float32), 22050)
    (folder / "a.txt").write_text("Vorwahl 089")
    (folder / "a.spoken.txt").write_text("Vorwahl von München")
    (folder / "b.txt").write_text("Vorwahl 089")
    found = {Path(c.source).name: c for c in
             discover_folder(SourceConfig(path=str(tmp_path / "in"), tag="de"), "in", 10000)}
    assert found["a.wav"].spoken == "Vorwahl von München" and found["b.wav"].spoken == ""
    front = text_frontend(FilterConfig())
    assert front.apply(found["a.wav"].text, "de", found["a.wav"].spoken) == "Vorwahl von München"
    assert front.apply(found["b.wav"].text, "de", found["b.wav"].spoken) == "Vorwahl null acht neun"
    assert inventory.unused_files([tmp_path / "in"], list(found.values()), set()) == []


ATOMS = ["3", "12", "2024", "1990", "0151 2345678", "+49 69 1234567", "5,50", "5.50", "1.000",
         "1,000", "€", "$", "%", "°C", "km", "-", ":", "14:30", "3.", "Mai", "May", "3rd", "Nr.",
         "z.B.", "Dr.", "&", "Der", "am", " ", "Katzen", ",", ".", "2024-05-03", "03.05.2024",
         "KSh", "Tarehe", "saa", "x"]


@pytest.mark.parametrize("language", ["de", "en", "sw"])
def test_any_mix_of_numbers_and_symbols_is_read_without_digits_and_reading_again_changes_nothing(
        language):
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.lists(st.sampled_from(ATOMS), min_size=1, max_size=8).map("".join))
    def check(text):
        said = normalize(text, language)
        assert not any(c.isdigit() for c in said), said
        assert normalize(said, language) == said
    check()


def test_variation_selectors_and_private_use_characters_are_dropped_with_one_warning(monkeypatch):
    monkeypatch.setattr(frontend, "_WARNED", set())
    with pytest.warns(UserWarning) as said:
        assert frontend.clean("I \u2764\ufe0f Tee \ue001 und\U000e0100 Kuchen") == \
            "I \u2764 Tee und Kuchen"
    assert {str(w.message).split(":")[1].split("(")[0].strip() for w in said} == {
        "variation selectors", "private-use characters"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process
        assert normalize("Ja\ufe0f \uf8ff", "de") == "Ja"
    # a text written in a script encoded in the private use area keeps its letters
    letters = "\ue100\ue101\ue102 \ue103\ue104"
    with pytest.warns(UserWarning, match="written mostly in private-use characters"):
        assert frontend.clean(letters) == letters
