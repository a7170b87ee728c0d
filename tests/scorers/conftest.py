"""Fixtures of the scorer tests: espeak-ng speech (``tests/scorers/speech.py``)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.scorers.speech import ENGLISH, speak


@pytest.fixture(scope="session")
def english_clips(tmp_path_factory) -> tuple[list[np.ndarray], int]:
    folder = tmp_path_factory.mktemp("espeak")
    clips = [speak(t, folder, name=f"en{i}") for i, t in enumerate(ENGLISH)]
    return [c for c, _ in clips], clips[0][1]
