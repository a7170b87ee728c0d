"""The expected duration of a text, fitted per language on the supervised run's dataset:
``seconds = a + b * words + c * text_tokens`` by least squares (upstream fixes
``0.7 + 0.4 s/word`` for English; a fitted model follows the dataset's language, speakers and
tokenizer). A language with too few rows for the fit is an error naming it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kani_adapt.core.errors import DataError

MIN_ROWS = 3


@dataclass(frozen=True)
class DurationModel:
    intercept: float
    per_word: float
    per_token: float
    rows: int
    rmse: float

    def expected(self, words: int, text_tokens: int) -> float:
        """Seconds, at least one frame's worth (0.08 s)."""
        return max(0.08, self.intercept + self.per_word * words + self.per_token * text_tokens)

    def describe(self) -> str:
        return (f"{self.intercept:.3f} s + {self.per_word:.3f} s/word + {self.per_token:.3f} "
                f"s/token (rows {self.rows}, rmse {self.rmse:.3f} s)")

    def identity(self) -> dict:
        return {"intercept": self.intercept, "per_word": self.per_word,
                "per_token": self.per_token, "rows": self.rows, "rmse": self.rmse}


def fit(words: list[int], text_tokens: list[int], seconds: list[float], language: str) -> DurationModel:
    """Least squares; where a coefficient comes out negative (words and tokens nearly collinear)
    the fit is redone without it, so a longer text never gets a shorter expectation."""
    if len(seconds) < MIN_ROWS:
        raise DataError(f"duration model for {language!r}: {len(seconds)} row(s) in the dataset, "
                        f"at least {MIN_ROWS} needed; add rows of that language")
    y = np.asarray(seconds, dtype=np.float64)
    columns = {"per_word": np.asarray(words, float), "per_token": np.asarray(text_tokens, float)}
    for keep in (("per_word", "per_token"), ("per_word",), ("per_token",)):
        x = np.stack([np.ones_like(y), *(columns[k] for k in keep)], 1)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        if (coef[1:] >= 0).all():
            break
    values = dict(zip(keep, coef[1:]))
    rmse = float(np.sqrt(np.mean((x @ coef - y) ** 2)))
    return DurationModel(float(coef[0]), float(values.get("per_word", 0.0)),
                         float(values.get("per_token", 0.0)), len(y), rmse)
