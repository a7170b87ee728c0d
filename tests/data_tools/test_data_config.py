import pytest

from data_tools.cli import main
from data_tools.config import DataConfig, load_config
from kani_adapt.errors import ConfigError


def write_yaml(tmp_path, text):
    path = tmp_path / "data.yaml"
    path.write_text(text)
    return path


def test_yaml_values_and_relative_paths(tmp_path):
    path = write_yaml(tmp_path, "work: out\nfilter:\n  min_snr_db: 10\ningest:\n  sources:\n"
                                "    - path: recordings\n      tag: DE\n")
    cfg = load_config(path)
    assert isinstance(cfg, DataConfig) and cfg.filter.min_snr_db == 10.0
    assert cfg.work == str((tmp_path / "out").resolve())
    assert cfg.ingest.sources[0].path == str((tmp_path / "recordings").resolve())
    assert cfg.segment.max_seconds == 20.0  # default kept
    assert load_config(write_yaml(tmp_path, "align:\n  enabled: off\n")).align.enabled == "off"


@pytest.mark.parametrize("text, fragment", [
    ("filtr:\n  min_snr_db: 3\n", "did you mean 'filter'"),
    ("filter:\n  min_snr: 3\n", "did you mean 'min_snr_db'"),
    ("filter:\n  min_snr_db: loud\n", "expected float"),
    ("ingest:\n  sources:\n    - path: x\n      layout: zip\n", "layout must be one of"),
    ("align:\n  enabled: maybe\n", "align.enabled"),
    ("ingest:\n  sources:\n    - path: x\n      tag: no\n", "quote the text"),
])
def test_config_mistakes_are_named(tmp_path, text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(write_yaml(tmp_path, text))


def test_cli_reports_config_errors_in_one_line(tmp_path, capsys):
    assert main(["check", str(write_yaml(tmp_path, "wrok: x\n"))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "did you mean 'work'" in err and "\n" not in err
    assert main(["ingest", str(tmp_path / "missing.yaml")]) == 2
    assert "no such data config" in capsys.readouterr().err


def test_check_prints_the_resolved_config(tmp_path, capsys):
    assert main(["check", str(write_yaml(tmp_path, "tokenize:\n  batch_seconds: 60\n"))]) == 0
    out = capsys.readouterr().out
    assert "batch_seconds: 60.0" in out and "min_snr_db: 15.0" in out


def test_align_on_without_mfa_stops_with_the_install_command(tmp_path, capsys):
    (tmp_path / "work" / "ingest").mkdir(parents=True)
    (tmp_path / "work" / "ingest" / "manifest.jsonl").write_text(
        '{"id": "a/b", "audio": "x.wav", "text": "t", "speaker": "s"}\n')
    path = write_yaml(tmp_path, "work: work\nalign:\n  mfa_command: no-mfa-here\n")
    assert main(["align", str(path)]) == 2
    assert "conda install -c conda-forge montreal-forced-aligner" in capsys.readouterr().err


def test_stage_without_its_input_says_what_to_run_first(tmp_path, capsys):
    assert main(["filter", str(write_yaml(tmp_path, "work: work\n"))]) == 2
    assert "data-tools ingest" in capsys.readouterr().err


def test_every_command_takes_key_value_overrides(tmp_path, capsys):
    path = write_yaml(tmp_path, "work: out\nfilter:\n  min_snr_db: 10\n")
    assert main(["check", str(path), "filter.min_snr_db=3", "embed.batch_size=2",
                 "ingest.sources=[{path: rec, tag: de}]"]) == 0
    out = capsys.readouterr().out
    assert "min_snr_db: 3.0" in out and "batch_size: 2" in out
    assert str((tmp_path / "rec").resolve()) in out  # an overridden path is resolved too
    assert main(["check", str(path), "filter.min_snr=3"]) == 2
    assert "did you mean 'min_snr_db'" in capsys.readouterr().err
    # a stage command: overrides before or after its options reach the loaded config
    assert main(["tokenize", str(path), "work=nowhere", "--shard", "0/2"]) == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
    assert main(["embed", str(path), "--shard", "1/2", "embed.device=cpu", "work=gone"]) == 2
    assert str(tmp_path / "gone") in capsys.readouterr().err
