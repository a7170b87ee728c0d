"""eval/index.html: the summary of eval.md, then one row per utterance with players that point at
files of the folder, spectrograms, failure flags and filters."""
import re
import shutil
from urllib.parse import unquote

import pandas as pd
import pytest

from kani_adapt.eval.page import write_index
from tests.listen.conftest import synthetic_eval

SOURCES = r'<audio controls preload="metadata" src="([^"]+)"'


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return synthetic_eval(tmp_path_factory.mktemp("page"))


def test_every_utterance_gets_a_row_of_players_for_the_files_of_its_folder(built):
    out = built
    page = (out / "index.html").read_text()
    sources = [unquote(s) for s in re.findall(SOURCES, page)]
    assert len(sources) == 4 * 4 and all((out / s).is_file() for s in sources)
    assert {s.split("/")[1] for s in sources} == {"recording", "codec_roundtrip", "adapted", "base"}
    pictures = re.findall(r'<img class="spec" src="([^"]+)"', page)
    assert len(pictures) == 16 and all((out / unquote(p)).is_file() for p in pictures)
    assert page.count('<tr class="clip"') == 4 and "<h1>Evaluation</h1>" in page
    assert '<select name="tag">' in page and '<option value="de">' in page


def test_the_page_is_rebuilt_from_the_folder_and_flags_failures(built, tmp_path):
    out = shutil.copytree(built, tmp_path / "a")
    df = pd.read_parquet(out / "utterances.parquet")
    df.loc[(df.checkpoint == "base") & (df["item"] == "anna-0"), ["failure", "failure_reasons"]] = [1.0, "runaway"]
    df.to_parquet(out / "utterances.parquet", index=False)
    (out / "wavs" / "adapted" / "bernd-1_s0.wav").unlink()
    moved = shutil.move(out, tmp_path / "moved")  # links are relative: the folder travels
    write_index(moved)
    page = (moved / "index.html").read_text()
    assert '<span class="flag">runaway</span>' in page and 'data-failure="base"' in page
    assert page.count("no audio") == 1
    assert all((moved / unquote(s)).is_file() for s in re.findall(SOURCES, page))
