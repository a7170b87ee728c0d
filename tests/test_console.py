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
