"""The packaged card says what the contribution gate did not cover: the checks that did not run
and every threshold given other than its default."""
import json
import shutil

import pytest

from data_tools.cli import main
from dt_helpers import needs_espeak
from test_contribute import good  # noqa: F401 (good: the shared fixture)

pytestmark = needs_espeak
MIN_HOURS = "0.002"  # the test contribution holds a few seconds per speaker


@pytest.fixture(scope="module")
def packaged(good, tmp_path_factory):
    out = tmp_path_factory.mktemp("pkg") / "glasgow-hf"
    assert main(["contribute", "package", str(good), "--out", str(out), "--quiet",
                 "--min-hours", MIN_HOURS]) == 0
    return out


def test_the_packaged_card_lists_the_checks_not_run_and_the_lowered_thresholds(packaged):
    from data_tools.contribute.card import front_matter

    _, body = front_matter((packaged / "README.md").read_text(), packaged / "README.md")
    not_covered = body.split("## What the check did not cover", 1)[1].split("## Statistics")[0]
    assert "transcripts against speech recognition" in not_covered
    if shutil.which("mfa") is None:
        assert "alignment: Montreal Forced Aligner is not installed" in not_covered
    assert "`min_hours`: 0.002 (default 1.0)" in not_covered
    assert "min_speakers" not in not_covered  # left at its default
    report = json.loads((packaged / "validation.json").read_text())
    assert report["thresholds_changed"] == {"min_hours": {"value": 0.002, "default": 1.0}}
    assert report["not_checked"][-1]["check"] == "transcripts against speech recognition"
