"""One resolver for "local path or hub id": local folders, the offline hub cache, one error."""
import json
import subprocess
import sys

import pytest

from kani_adapt.core import hub
from kani_adapt.core.errors import CheckpointError


def fake_cache(tmp_path, monkeypatch, repo_id: str, files: dict[str, str]):
    """A Hugging Face cache holding ``repo_id`` with ``files``; the hub switched off."""
    import huggingface_hub.constants as constants

    revision = "0" * 40
    repo = tmp_path / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for name, text in files.items():
        (snapshot / name).write_text(text)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return snapshot


def test_a_local_folder_is_used_as_it_is(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert hub.resolve_folder(str(tmp_path)) == tmp_path


def test_a_local_folder_missing_a_required_file_names_it(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="lacks model.safetensors"):
        hub.resolve_folder(str(tmp_path), required=("config.json", "model.safetensors"))


def test_a_hub_id_resolves_through_the_offline_cache(tmp_path, monkeypatch):
    snapshot = fake_cache(tmp_path, monkeypatch, "someone/tiny",
                          {"config.json": json.dumps({"a": 1}), "codec.nemo": "x"})
    assert hub.resolve_folder("someone/tiny") == snapshot
    assert hub.resolve_file("someone/tiny", ".nemo") == snapshot / "codec.nemo"


def test_a_hub_id_absent_from_the_offline_cache_is_one_line(tmp_path, monkeypatch):
    fake_cache(tmp_path, monkeypatch, "someone/tiny", {"config.json": "{}"})
    with pytest.raises(CheckpointError) as err:
        hub.resolve_folder("someone/absent")
    message = str(err.value)
    assert "'someone/absent'" in message and "HF_HUB_OFFLINE" in message and "\n" not in message


@pytest.mark.parametrize("text", ["missing-dir", "./a/b", "a/b/c", "/abs/absent"])
def test_neither_a_path_nor_a_hub_id_gets_the_one_message(tmp_path, text):
    with pytest.raises(CheckpointError, match=r"no such model directory \(give a local model "
                                              r"directory or a hub id like"):
        hub.resolve_folder(text)
    with pytest.raises(CheckpointError, match=r"no such \.nemo file \(give a local \.nemo file"):
        hub.resolve_file(text if "/" in text else text + ".nemo", ".nemo")


def test_an_existing_file_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").write_text("not a folder")
    assert not hub.is_hub_id("owner/name")
    assert hub.is_hub_id("owner/other")


def test_importing_the_resolver_reaches_no_network_library():
    code = "import sys, kani_adapt.core.hub; print('huggingface_hub' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
