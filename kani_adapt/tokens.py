"""The KaniTTS2 token contract: ids, one training example, frame-level positions, parsing.

Everything here is a pure function over plain Python / numpy data so that training, generation
and the data tools agree by construction. Layout and ids follow the format page (sections 1-3):

    SOH BOS <text> EOT EOH SOA SOS a(0,0) a(0,1) a(0,2) a(0,3) a(1,0) ... EOS EOA
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from kani_adapt.core.errors import DataError

TEXT_VOCAB_SIZE = 64400
BOS = 1  # LFM2 <|startoftext|>, prepended by the tokenizer
END_OF_TEXT = 2  # LFM2 <|endoftext|>, appended by hand
START_OF_SPEECH = 64401
END_OF_SPEECH = 64402  # the stop token of generation
START_OF_HUMAN = 64403
END_OF_HUMAN = 64404
START_OF_AI = 64405
END_OF_AI = 64406
PAD = 64407
AUDIO_TOKENS_START = 64410
TOKENS_PER_FRAME = 4
CODEBOOK_SIZE = 4032
VOCAB_SIZE = AUDIO_TOKENS_START + TOKENS_PER_FRAME * CODEBOOK_SIZE  # 80538
NUM_ADDED_TOKENS = VOCAB_SIZE - TEXT_VOCAB_SIZE  # 16138 <custom_token_i>
IGNORE_INDEX = -100
FRAMES_PER_SECOND = 12.5


def is_audio(token_id: int) -> bool:
    return token_id >= AUDIO_TOKENS_START


def format_text(transcript: str, tag: str | None = None) -> str:
    """The text the model reads: ``"{tag}: {transcript}"`` with the tag lower-cased.

    Training lower-cases tags and inference does not, so the tag is normalised here, once.
    """
    if tag is None or not tag.strip():
        return transcript
    return f"{tag.strip().lower()}: {transcript}"


def with_bos(text_ids: Sequence[int]) -> list[int]:
    """Text ids with exactly one leading BOS (tokenizers differ in whether they add it)."""
    ids = list(text_ids)
    return ids if ids[:1] == [BOS] else [BOS, *ids]


def drop_repeated_frames(codes: np.ndarray) -> np.ndarray:
    """Drop every frame whose 4 codes equal those of the frame before it (official data prep).

    This shortens the audio and so changes timing; it is an explicit, recorded option.
    """
    codes = _check_codes(codes)
    if len(codes) < 2:
        return codes
    keep = np.ones(len(codes), dtype=bool)
    keep[1:] = np.any(codes[1:] != codes[:-1], axis=1)
    return codes[keep]


def codes_to_tokens(codes: np.ndarray) -> list[int]:
    """(frames, 4) codes -> frame-major audio token ids ``64410 + 4032 * c + code``."""
    codes = _check_codes(codes)
    offsets = AUDIO_TOKENS_START + CODEBOOK_SIZE * np.arange(TOKENS_PER_FRAME)
    return (codes + offsets[None, :]).reshape(-1).tolist()


def human_turn(text_ids: Sequence[int]) -> list[int]:
    """``SOH BOS <text> EOT EOH``: the text as the model reads it."""
    return [START_OF_HUMAN, *with_bos(text_ids), END_OF_TEXT, END_OF_HUMAN]


def prompt_ids(text_ids: Sequence[int], prefill_speech: bool = True, repeats: int = 1) -> list[int]:
    """Inference prompt: ``SOH + text(BOS..) + EOT EOH`` and, like the official server, ``SOA SOS``.

    ``repeats`` R > 1 puts R - 1 copies of the human turn before it (:class:`TextLayout`)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    ids = human_turn(text_ids) * repeats
    if prefill_speech:
        ids += [START_OF_AI, START_OF_SPEECH]
    return ids


def text_tokens(text_ids: Sequence[int]) -> int:
    """How many text tokens a prompt's text has (its tag included, BOS not)."""
    return len(with_bos(text_ids)) - 1


@dataclass(frozen=True)
class TextLayout:
    """Short texts repeated before the one that is spoken (upstream's short-prompt remedy,
    nineninesix gepard-train MODEL_GUIDE section 5.2):

        (SOH BOS text EOT EOH) x (R-1) | SOH BOS text EOT EOH SOA SOS | audio ...

    A text of fewer than ``below`` text tokens (:func:`text_tokens`) gets R = ceil(``target`` /
    its tokens) copies in all, at most ``most``; longer texts, and ``below`` 0, get R = 1 (the
    plain layout, what the official runtime builds). The copies are context only: training
    masks them from the loss. Training and generation must use the same layout; a run stores it
    (``text_layout.json``) and every export and ``generate`` use the stored one."""

    below: int = 0  # 0: off
    target: int = 16
    most: int = 8

    @property
    def enabled(self) -> bool:
        return self.below > 0

    def repeats(self, text_ids: Sequence[int]) -> int:
        n = text_tokens(text_ids)
        if not self.enabled or n == 0 or n >= self.below:
            return 1
        return max(1, min(self.most, -(-self.target // n)))

    def identity(self) -> dict:
        return {"below": self.below, "target": self.target, "most": self.most}

    @classmethod
    def from_identity(cls, data: dict) -> "TextLayout":
        values = {k: int(data.get(k, getattr(cls, k))) for k in ("below", "target", "most")}
        if min(values.values()) < 0 or values["most"] < 1 or values["target"] < 1:
            raise DataError(f"{data}: needs below >= 0, target >= 1 and most >= 1")
        return cls(**values)


@dataclass(frozen=True)
class Example:
    """One training sequence; ``labels`` is aligned with ``input_ids`` (no shift applied)."""

    input_ids: list[int]
    labels: list[int]
    num_frames: int


def build_example(
    text_ids: Sequence[int],
    codes: np.ndarray,
    *,
    drop_repeats: bool = True,
    loss_on: str = "all",
    repeats: int = 1,
) -> Example:
    """Build one training example from tokenised text and (frames, 4) codec codes.

    ``loss_on="all"`` trains on every token (official); ``"audio"`` masks the prompt so only the
    audio tokens, end of speech and end of AI are learned. ``drop_repeats`` (default, as the
    released weights were trained) drops a frame equal to the one before it. ``repeats`` R > 1
    puts R - 1 copies of the text before it (:class:`TextLayout`), masked from the loss always.
    """
    if loss_on not in ("all", "audio"):
        raise DataError(f"loss_on must be 'all' or 'audio', got {loss_on!r}")
    codes = drop_repeated_frames(codes) if drop_repeats else _check_codes(codes)
    prompt = prompt_ids(text_ids, prefill_speech=True, repeats=repeats)
    copies = len(human_turn(text_ids)) * (repeats - 1)
    ids = prompt + codes_to_tokens(codes) + [END_OF_SPEECH, END_OF_AI]
    if loss_on == "all":
        labels = [IGNORE_INDEX] * copies + ids[copies:]
    else:
        labels = [IGNORE_INDEX] * len(prompt) + ids[len(prompt):]
    return Example(input_ids=ids, labels=labels, num_frames=len(codes))


def frame_positions(
    input_ids: Sequence[int], audio_step: float = 1.0, *, speaker_slot: bool = False
) -> np.ndarray:
    """Frame-level RoPE positions (format page section 3).

    ``pos[i] = #non-audio before i + floor(#audio before i / 4) * audio_step``. With a speaker
    slot the result has one more element: ``[pos0, pos0 + 1, pos[1:] + 1]``.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    audio = ids >= AUDIO_TOKENS_START
    audio_before = np.concatenate([[0], np.cumsum(audio)[:-1]]) if len(ids) else np.zeros(0)
    text_before = np.arange(len(ids)) - audio_before
    pos = text_before + (audio_before // TOKENS_PER_FRAME) * audio_step
    pos = pos.astype(np.float64)
    if speaker_slot and len(pos):
        pos = np.concatenate([pos[:1], pos[:1] + 1, pos[1:] + 1])
    return pos


class PositionTracker:
    """Positions of tokens fed one at a time (cached generation), equal to ``frame_positions``.

    One tracker per batch row: rows of a batch reach their audio at different steps.
    """

    def __init__(self, audio_step: float = 1.0, speaker_slot: bool = False):
        self.audio_step = audio_step
        self.speaker_slot = speaker_slot
        self.text_count = 0
        self.audio_count = 0

    def push(self, token_id: int) -> float:
        """Position of ``token_id`` appended after every token pushed so far."""
        pos = self.text_count + (self.audio_count // TOKENS_PER_FRAME) * self.audio_step
        if self.speaker_slot and (self.text_count + self.audio_count) > 0:
            pos += 1
        if is_audio(token_id):
            self.audio_count += 1
        else:
            self.text_count += 1
        return float(pos)

    def extend(self, token_ids: Iterable[int]) -> list[float]:
        return [self.push(t) for t in token_ids]


def parse_codes(ids: Sequence[int], *, strict: bool = True) -> np.ndarray:
    """Generated ids -> (frames, 4) codes, whole frames only.

    Takes the ids after the first start-of-speech (or all ids if there is none) up to the first
    end-of-speech, drops a trailing partial frame and removes the codebook offsets. With
    ``strict`` a token that is not an audio token of the expected codebook raises ``DataError``;
    otherwise parsing stops at the first such token.
    """
    ids = list(ids)
    start = ids.index(START_OF_SPEECH) + 1 if START_OF_SPEECH in ids else 0
    span = ids[start:]
    if END_OF_SPEECH in span:
        span = span[: span.index(END_OF_SPEECH)]
    arr = np.asarray(span, dtype=np.int64)
    expected = AUDIO_TOKENS_START + CODEBOOK_SIZE * (np.arange(len(arr)) % TOKENS_PER_FRAME)
    bad = np.nonzero((arr < expected) | (arr >= expected + CODEBOOK_SIZE))[0]
    if len(bad):
        first = int(bad[0])
        if strict:
            raise DataError(
                f"token {int(arr[first])} at audio position {first} (frame {first // 4}, "
                f"codebook {first % 4}) is not an audio token of that codebook; "
                "pass strict=False to keep only the frames before it"
            )
        arr, expected = arr[:first], expected[:first]
    frames = len(arr) // TOKENS_PER_FRAME
    whole = frames * TOKENS_PER_FRAME
    return (arr[:whole] - expected[:whole]).reshape(frames, TOKENS_PER_FRAME)


def _check_codes(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != TOKENS_PER_FRAME:
        raise DataError(f"codes must have shape (frames, 4), got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= CODEBOOK_SIZE):
        raise DataError(f"codes must lie in 0..{CODEBOOK_SIZE - 1}, got {codes.min()}..{codes.max()}")
    return codes.astype(np.int64)
