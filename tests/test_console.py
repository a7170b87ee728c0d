"""The console: our lines by default, third-party chatter only with --verbose."""
import logging
import warnings

import pytest

from kani_adapt.core import console


@pytest.fixture
def quiet():
    console.setup(verbose=False)
    yield
    console.setup(verbose=False)


def test_third_party_warnings_and_logs_are_quiet_but_ours_are_not(quiet, capsys):
    with warnings.catch_warnings(record=True) as caught:
        console.setup(verbose=False)
        warnings.warn_explicit("library chatter", UserWarning, "x.py", 1, module="nemo.core")
        warnings.warn_explicit("drift is high", UserWarning, "t.py", 1,
                              module="kani_adapt.training.codec.train")
    assert [str(w.message) for w in caught] == ["drift is high"]
    logging.getLogger("nemo_logger").warning("Vector quantizer does not support commit loss.")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").warning("GPU available: False")
    logging.getLogger("kani_adapt.train").info("step 5/30  loss 1.0")
    err = capsys.readouterr().err
    assert "step 5/30" in err
    assert "Vector quantizer" not in err and "GPU available" not in err


def test_verbose_brings_third_party_lines_back(quiet):
    console.setup(verbose=True)
    nemo = logging.getLogger("nemo_logger")
    assert all(f.filter(logging.makeLogRecord({"levelno": logging.INFO})) for f in nemo.filters)
    assert logging.getLogger("lightning.pytorch.utilities.rank_zero").getEffectiveLevel() < logging.ERROR
    console.setup(verbose=False)
    assert not all(f.filter(logging.makeLogRecord({"levelno": logging.INFO})) for f in nemo.filters)


def test_progress_off_a_terminal_logs_lines_with_an_eta(quiet, capsys):
    seen = list(console.progress(range(5), desc="tokenize", unit="clip", every=0.0))
    assert seen == list(range(5))
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("tokenize:")]
    assert lines[0].startswith("tokenize: 1/5 clips") and "ETA" in lines[0]
    assert lines[-1].startswith("tokenize: 5/5 clips (100 %)")
    assert "\r" not in "".join(lines)


def test_hms():
    assert console.hms(3725.4) == "1:02:05" and console.hms(-1) == "0:00:00"


def test_names_reach_the_terminal_with_control_and_bidi_characters_spelled_out(quiet, capsys):
    log = logging.getLogger("kani_adapt.test")
    name = "anna\u202eevil\n[ok] forged line\x1b[2J"
    log.warning("speaker %s has %d clips", name, 3)
    log.warning("a name in a mapping: %(who)s", {"who": "x\u2066y"})
    log.warning(f"formatted before logging: {name}")
    err = capsys.readouterr().err
    assert "\u202e" not in err and "\x1b" not in err and "\u2066" not in err
    assert err.splitlines() == [
        "speaker anna\\u202eevil\\u000a[ok] forged line\\u001b[2J has 3 clips",
        "a name in a mapping: x\\u2066y",
        "formatted before logging: anna\\u202eevil\\u000a[ok] forged line\\u001b[2J"]


def test_an_error_line_spells_out_what_a_name_hides(capsys):
    from kani_adapt.core.cli_kit import run_guarded
    from kani_adapt.core.errors import DataError

    def fails(args):
        raise DataError("speaker folder 'a\u202eb\x1b[31m': no clips; add some")

    assert run_guarded(fails, type("Args", (), {})()) == 2
    err = capsys.readouterr().err
    assert err == "error: speaker folder 'a\\u202eb\\u001b[31m': no clips; add some\n"


def test_a_long_silent_step_says_it_is_still_working(quiet, capsys):
    import time

    with console.working("eval", every=0.1):
        console.doing("loading the scorers")
        time.sleep(0.5)  # silent work
    silent = [line for line in capsys.readouterr().err.splitlines() if "still" in line]
    assert 2 <= len(silent) <= 5 and silent[0].startswith("eval: still loading the scorers (0:00:0")
    with console.working("eval", every=0.1):
        for _ in range(12):  # lines come more often than the heartbeat: it stays quiet
            logging.getLogger("kani_adapt.progress").info("scored a clip")
            time.sleep(0.03)
    assert "still" not in capsys.readouterr().err


@pytest.mark.parametrize("where", ["eval", "training", "codec fine-tuning"])
def test_eval_and_training_are_never_silent_for_long(where, quiet, capsys, monkeypatch, tmp_path):
    """Each command's work runs inside working(): a slow phase of it is named every HEARTBEAT."""
    import time

    from kani_adapt.eval import evaluate
    from kani_adapt.training import fit
    from kani_adapt.training.codec import train as codec_train

    monkeypatch.setattr(console, "HEARTBEAT", 0.1)

    def slow(*args, **kwargs):
        console.doing("something slow")
        time.sleep(0.35)
        return {}
    if where == "eval":
        monkeypatch.setattr(evaluate, "_run_eval", slow)
        evaluate.run_eval("ckpt", [], None, tmp_path / "eval")
    elif where == "training":
        monkeypatch.setattr(fit, "_train", slow)
        fit.train(type("Cfg", (), {"run_dir": str(tmp_path / "run")})())
    else:
        monkeypatch.setattr(codec_train, "load_run_config", lambda run: None)
        monkeypatch.setattr(codec_train, "_resume", slow)
        codec_train.resume_run(tmp_path / "run", [])
    assert f"{where}: still something slow" in capsys.readouterr().err
