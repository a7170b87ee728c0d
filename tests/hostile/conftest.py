"""Fixtures of the hostile-input suite (helpers: ``tests/hostile/refusals.py``)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory) -> Path:
    from kani_adapt.cli.main import main

    out = tmp_path_factory.mktemp("gen") / "tiny"
    assert main(["init", "--size", "tiny", "--out", str(out), "--dtype", "fp32"]) == 0
    return out
