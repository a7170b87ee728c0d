"""The eval protocol's figures on hand-made rows: corpus rates, catastrophic rate, rescaled
similarity, and the anchor in the verdict."""
import pandas as pd
import pytest

from kani_adapt.eval import protocol, report
from kani_adapt.scorers.registry import CATASTROPHIC_WER
from kani_adapt.scorers.text import error_rates


def _rows(name, pairs, speakers):
    rows = []
    for k, ((ref, hyp), spk) in enumerate(zip(pairs, speakers)):
        r = error_rates(ref, hyp, "en")
        rows.append(dict(checkpoint=name, item=f"i{k}", sample=0, speaker=spk, tag="en",
                         cer=r.cer, wer=r.wer, catastrophic=float(r.wer > CATASTROPHIC_WER),
                         char_edits=r.char_edits, ref_chars=r.chars, word_edits=r.word_edits,
                         ref_words=r.words, similarity=0.5 + 0.1 * k))
    return rows


PAIRS = [("the cat", "the bat"),  # 1 char edit of 7; 1 word of 2
         ("a long sentence with many words in it", "a long sentence with many words in it"),
         ("no", "yes it is")]  # catastrophic


def test_corpus_cer_is_all_edits_over_all_reference_characters():
    df = pd.DataFrame(_rows("m", PAIRS, ["a", "a", "b"]))
    rates = protocol.corpus_rates(df, resamples=50)["m"]
    # by hand: "the cat"->"the bat" 1 edit / 7 chars; identical 0 / 37; "no"->"yes it is":
    # no letter in common, so 2 substitutions and 7 insertions for 2 reference characters
    edits = [1, 0, 9]
    chars = [7, 37, 2]
    assert [r["char_edits"] for r in _rows("m", PAIRS, "aab")] == edits
    assert [r["ref_chars"] for r in _rows("m", PAIRS, "aab")] == chars
    assert rates["corpus_cer"]["all"]["mean"] == pytest.approx(sum(edits) / sum(chars))
    per_utterance = (1 / 7 + 0 + 9 / 2) / 3
    assert df["cer"].mean() == pytest.approx(per_utterance)
    assert rates["corpus_cer"]["all"]["mean"] != pytest.approx(per_utterance)
    assert rates["corpus_wer"]["all"]["mean"] == pytest.approx((1 + 0 + 3) / (2 + 8 + 1))
    assert rates["corpus_cer"]["speakers"]["b"]["mean"] == pytest.approx(9 / 2)
    assert df["catastrophic"].tolist() == [0.0, 0.0, 1.0]


def test_similarity_is_rescaled_between_floor_and_ceiling():
    df = protocol.add_derived(pd.DataFrame(_rows("m", PAIRS, "aab")),
                              {"similarity": {"ceiling": 0.7, "floor": 0.5}})
    assert df["similarity_norm"].tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_the_verdict_reads_the_checkpoint_against_the_recordings():
    df = pd.DataFrame(_rows("m", PAIRS, "aab") + _rows("recordings", [(r, r) for r, _ in PAIRS],
                                                      "aab"))
    summary = report.summarise(df, ["cer", "catastrophic"], 50)
    for name, rates in protocol.corpus_rates(df, 50).items():
        summary[name].update(rates)
    line = report.verdict("m", summary["m"], {}, {}, summary["recordings"])
    assert "vs recordings: cer 1.548 vs 0.000 (worse)" in line
    assert "corpus_wer 0.364 vs 0.000 (worse)" in line


def test_failures_and_cer_are_reported_per_prompt_length_bucket_and_tag():
    rows = [dict(checkpoint="m", tag=t, prompt_tokens=n, failure=f, cer=c)
            for t, n, f, c in [("de", 3, 1.0, 0.9), ("de", 5, 0.0, 0.5), ("de", 20, 0.0, 0.1),
                               ("en", 9, 1.0, 0.7)]]
    rows.append(dict(checkpoint="recordings", tag="de", prompt_tokens=None, failure=0.0, cer=0.0))
    got = protocol.by_prompt_length(pd.DataFrame(rows))
    assert set(got) == {"m"}  # the anchor rows have no prompt
    assert got["m"]["de"]["<=6"] == {"n": 2, "failure": 0.5, "cer": pytest.approx(0.7)}
    assert got["m"]["de"][">=13"]["failure"] == 0.0 and got["m"]["en"]["7-12"]["n"] == 1
    assert [protocol.bucket_of(n) for n in (0, 6, 7, 12, 13)] == ["<=6", "<=6", "7-12", "7-12", ">=13"]


def test_one_speaker_gets_words_not_a_degenerate_interval_nor_nan(tmp_path):
    """A tag of one speaker, a speaker of one utterance, a floor with one speaker: eval.md,
    eval.json and the verdict say so in words; no [x, x], no nan, no direction claimed."""
    import json
    import math

    rows = _rows("m", PAIRS, ["a", "a", "b"])
    rows[2]["tag"] = "en_alone"  # speaker b, one utterance, the only voice of its tag
    rows = [dict(r, base=False) for r in rows]
    base = [dict(r, checkpoint="base", similarity=r["similarity"] - 0.2) for r in rows]
    df = protocol.add_derived(pd.DataFrame(rows + base),
                              {"similarity": {"ceiling": 0.7, "floor": float("nan")}})
    assert df["similarity_norm"].isna().all()  # no floor: nothing to rescale between
    summary = report.summarise(df, ["cer", "similarity", "similarity_norm"], 50)
    tag = summary["m"]["similarity"]["tags"]["en_alone"]
    assert (tag["low"], tag["high"], tag["note"]) == (None, None, "one speaker: no interval")
    assert summary["m"]["similarity"]["speakers"]["b"]["note"] == "one utterance: no interval"
    assert summary["m"]["similarity_norm"]["all"]["note"] == "not measured"
    alone = df[df.tag == "en_alone"]
    comp = report.compare(alone, "m", "base", ["similarity"], 50)
    line = report.verdict("m", report.summarise(alone, ["similarity"], 50)["m"], {"base": comp},
                          {"similarity": {"ceiling": 0.7, "floor": float("nan")}})
    assert "better" not in line and "+0.200 (one speaker: no interval)" in line, line
    assert "floor not measured (one speaker" in line and "nan" not in line
    result = {"eval_set": "s", "items": 3, "samples": 1, "summary": summary,
              "comparisons": {"m vs base": report.compare(df, "m", "base", ["similarity"], 50)},
              "anchors": {"similarity": report.anchor_record(
                  "similarity", {"ceiling": 0.7, "floor": float("nan")})},
              "verdicts": [line], "coverage": report.coverage([])}
    report.write_markdown(tmp_path / "eval.md", result)
    report.write_json(tmp_path / "eval.json", result)
    text = (tmp_path / "eval.md").read_text()
    assert "nan" not in text.lower().replace("nanocodec", "")
    assert "0.700 (one speaker: no interval)" in text and "b 0.70 (one utterance: no interval)" in text
    assert "different-speaker floor not measured (one speaker" in text
    kept = json.loads((tmp_path / "eval.json").read_text())
    assert kept["anchors"]["similarity"]["floor"] is None
    assert "floor not measured" in kept["anchors"]["similarity"]["note"]
    cell = kept["summary"]["m"]["similarity"]["tags"]["en_alone"]
    assert cell["low"] is None and cell["note"] == "one speaker: no interval"
    assert not any(isinstance(v, float) and math.isnan(v) for v in _leaves(kept))


def _leaves(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    elif isinstance(x, list):
        for v in x:
            yield from _leaves(v)
    else:
        yield x


def test_inverted_anchors_leave_similarity_norm_empty_and_say_why():
    df = protocol.add_derived(pd.DataFrame(_rows("m", PAIRS, "aab")),
                              {"similarity": {"ceiling": -0.25, "floor": -0.15}})
    assert "similarity_norm" in df and df["similarity_norm"].isna().all()
    line = report.anchor_line("similarity", {"ceiling": -0.25, "floor": -0.15})
    assert "does not tell these recordings' voices apart" in line
    record = report.anchor_record("similarity", {"ceiling": -0.25, "floor": -0.15})
    assert "no similarity_norm" in record["note"]
