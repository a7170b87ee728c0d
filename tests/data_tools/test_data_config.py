import re
import typing

import pytest

from data_tools.cli import main
from data_tools.config import DataConfig, load_config
from data_tools.contribute.config import load as load_contribute
from kani_adapt.core.errors import ConfigError


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
    ("ingest:\n  sources:\n    - path: x\n      layout: zip\n",
     "data.yaml.ingest.sources[0].layout: 'zip' is not one of 'folder', 'ljspeech', 'commonvoice'"),
    ("align:\n  enabled: maybe\n",
     "data.yaml.align.enabled: 'maybe' is not one of 'auto', 'on', 'off'"),
    ("transcribe:\n  enabled: maybe\n",
     "data.yaml.transcribe.enabled: 'maybe' is not one of 'auto', 'on', 'off'"),
    ("ingest:\n  sources:\n    - path: ''\n",
     "data.yaml.ingest.sources[0]: path is empty: name the input folder"),
    ("ingest:\n  sources:\n    - tag: de\n", "data.yaml.ingest.sources[0]: path is empty: name the input folder"),
    ("ingest:\n  sources:\n    - path: x\n      tag: no\n", "quote the text"),
])
def test_config_mistakes_are_named(tmp_path, text, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(write_yaml(tmp_path, text))


def test_bad_values_in_several_sections_are_reported_in_one_line(tmp_path, capsys):
    path = write_yaml(tmp_path, "max_rejected_fraction: 2\n"
                                "ingest:\n  sources:\n    - path: rec\n      layout: zip\n"
                                "segment:\n  pad_seconds: -1\n"
                                "transcribe:\n  enabled: maybe\n  max_no_speech_prob: 1.5\n"
                                "filter:\n  max_text_chars: 0\n"
                                "tokenize:\n  max_batch_size: 0\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 7 problems: ") and err.count("\n") == 1, err
    for fragment in (f"{path}.max_rejected_fraction: 2.0 is outside [0, 1]",
                     f"{path}.ingest.sources[0].layout: 'zip' is not one of",
                     f"{path}.segment.pad_seconds: -1.0 is outside >= 0",
                     f"{path}.transcribe.enabled: 'maybe' is not one of 'auto', 'on', 'off'",
                     f"{path}.transcribe.max_no_speech_prob: 1.5 is outside [0, 1]",
                     f"{path}.filter.max_text_chars: 0 is outside > 0",
                     f"{path}.tokenize.max_batch_size: 0 is outside > 0"):
        assert fragment in err


@pytest.mark.parametrize("section, low, high", [
    ("segment", "min_seconds", "max_seconds"), ("filter", "min_seconds", "max_seconds"),
    ("transcribe", "min_words_per_second", "max_words_per_second")])
def test_a_minimum_must_lie_below_its_maximum(tmp_path, section, low, high):
    path = write_yaml(tmp_path, f"{section}:\n  {low}: 4\n  {high}: 4\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}.{section}: {low} (4.0) must be below {high} (4.0)"
    cfg = load_config(path, [f"{section}.{low}=3"])  # just below is fine
    assert getattr(getattr(cfg, section), low) == 3.0


def test_layout_choices_are_the_layouts_ingest_reads():
    from data_tools.inputs.layouts import DISCOVER, SourceConfig

    layout = typing.get_type_hints(SourceConfig)["layout"]
    assert set(typing.get_args(layout)) == set(DISCOVER)


def test_contribute_thresholds_are_checked_by_the_loader(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_contribute(None, ["min_hours=-1", "min_speakers=0", "max_bad_clip_fraction=2",
                               "filter.min_seconds=30", "align.enabled=maybe"])
    msg = str(err.value)
    assert msg.startswith("5 problems: ") and "\n" not in msg
    for fragment in ("config.min_hours: -1.0 is outside >= 0",
                     "config.min_speakers: 0 is outside >= 1",
                     "config.max_bad_clip_fraction: 2.0 is outside [0, 1]",
                     "config.filter: min_seconds (30.0) must be below max_seconds (20.0)",
                     "config.align.enabled: 'maybe' is not one of 'auto', 'on', 'off'"):
        assert fragment in msg
    path = tmp_path / "c.yaml"
    path.write_text("align:\n  enabled: off\nmin_speakers: 1\n")
    assert load_contribute(path).align.enabled == "off"  # YAML's boolean off means the switch


def test_cli_reports_config_errors_in_one_line(tmp_path, capsys):
    assert main(["check", str(write_yaml(tmp_path, "wrok: x\n"))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "did you mean 'work'" in err and "\n" not in err
    assert main(["ingest", str(tmp_path / "missing.yaml")]) == 2
    assert "no such data config" in capsys.readouterr().err


def test_check_prints_the_resolved_config_on_request_beside_its_verdict(tmp_path, capsys):
    path = write_yaml(tmp_path, "tokenize:\n  batch_seconds: 60\n  codec: tiny\n")
    assert main(["check", str(path), "--show-config"]) == 2  # no sources: a problem
    out = capsys.readouterr().out
    assert "batch_seconds: 60.0" in out and "min_snr_db: 15.0" in out
    assert "problem: ingest.sources is empty" in out
    assert main(["check", str(path)]) == 2
    assert "min_snr_db" not in capsys.readouterr().out


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
                 "ingest.sources=[{path: rec, tag: de}]", "--show-config"]) == 2  # no rec/
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
