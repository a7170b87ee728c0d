"""Eval-set files: JSONL and YAML, relative paths, and one clear error per mistake."""
import json

import pytest

from kani_adapt.core.errors import DataError
from kani_adapt.eval import report
from kani_adapt.eval.evalset import load_eval_set


def test_yaml_and_jsonl_give_the_same_items_with_paths_relative_to_the_file(tmp_path):
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "a.wav").write_bytes(b"RIFF")
    raw = [{"text": "Hallo", "speaker": "anna", "tag": "DE_Hessian", "reference": "refs/a.wav", "base": True},
           {"id": "x", "text": "Moin", "speaker": "ben"}]
    (tmp_path / "set.jsonl").write_text("\n".join(json.dumps(r) for r in raw) + "\n\n")
    import yaml
    (tmp_path / "set.yaml").write_text(yaml.safe_dump(raw))
    a, b = load_eval_set(tmp_path / "set.jsonl"), load_eval_set(tmp_path / "set.yaml")
    assert [(i.id, i.text, i.tag, i.reference, i.base) for i in a] == \
        [(i.id, i.text, i.tag, i.reference, i.base) for i in b]
    assert a[0].reference == tmp_path / "refs" / "a.wav" and a[0].tag == "de_hessian"
    assert a[0].reference_key == str(tmp_path / "refs" / "a.wav") and a[1].reference_key is None
    assert (a[0].id, a[1].id) == ("1", "x")


@pytest.mark.parametrize("content, message", [
    ('{"text": "a"}\n', "'speaker' is missing"),
    ('{"text": "a", "speaker": "s"}\n{"text": "b", "speaker": "s", "id": "1"}\n', "duplicate item ids"),
    ('{"text": "a", "speaker": "s"\n', "set.jsonl:1: not a JSON object"),
    ("", "the eval set is empty"),
])
def test_bad_eval_sets_name_the_problem(tmp_path, content, message):
    path = tmp_path / "set.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_eval_set(path)


def test_other_file_types_are_refused(tmp_path):
    (tmp_path / "set.csv").write_text("text,speaker\n")
    with pytest.raises(DataError, match=".jsonl or .yaml"):
        load_eval_set(tmp_path / "set.csv")


def test_verdict_names_direction_forgetting_and_similarity_anchors():
    cell = lambda mean, low, high: {"mean": mean, "low": low, "high": high, "n": 10, "clusters": 5}
    summary = {"cer": {"all": cell(0.1, 0.05, 0.15)}, "similarity": {"all": cell(0.7, 0.6, 0.8)}}
    comps = {"base": {"all": {"cer": {"diff": cell(-0.2, -0.3, -0.1), "win_rate": cell(0.9, 0.8, 1.0)}},
                      "forgetting": {"cer": {"diff": cell(0.1, 0.05, 0.2), "win_rate": cell(0.2, 0.1, 0.3)}}}}
    line = report.verdict("adapted", summary, comps, {"similarity": {"ceiling": 0.9, "floor": 0.1}})
    assert line.startswith("adapted: cer 0.100, similarity 0.700 (ceiling 0.900, floor 0.100)")
    assert "vs base: better on cer (win rate 0.90); forgetting" in line
    comps["base"]["all"]["cer"]["diff"] = cell(0.01, -0.02, 0.04)
    assert "same on cer" in report.verdict("adapted", summary, comps)
