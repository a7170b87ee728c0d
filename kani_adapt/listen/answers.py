"""What a listener's page shows of a trial, and the server-side check of every submitted value.

The page sees slots ("A"/"B", "1".."n", "ref" for the open MUSHRA reference), never system
names, so the test stays blind. A submission is turned into judgement rows only when every
value is of the right kind and in range; anything else is refused with the reason.
"""
from __future__ import annotations

from kani_adapt.listen.design import Trial
from kani_adapt.listen.material import REFERENCE, Material
from kani_adapt.listen.store import Refused

AB_CHOICES = {"A": "a", "B": "b", "none": "none"}
CMOS_RANGE = (-3, 3)
MUSHRA_RANGE = (0, 100)
ACCENT_RANGE = (1, 5)
MAX_TEXT = 300
MAX_ELAPSED_MS = 24 * 3600 * 1000

QUESTIONS = {
    "ab": "Which one sounds better? Listen to both first.",
    "cmos": "How does B compare with A? From -3 (A much better) to +3 (B much better).",
    "mushra": "Rate each sample against the reference, from 0 (bad) to 100 (excellent). One of them "
              "is the reference itself: give it 100.",
    "intelligibility": "Type what you heard, as well as you can.",
}


def slots(trial: Trial) -> list[str]:
    if trial.design in ("ab", "cmos"):
        return ["A", "B"]
    return [str(k + 1) for k in range(len(trial.stimuli))]


def system_of(trial: Trial, slot: str) -> str | None:
    """The system behind a slot of the trial (None: no such slot)."""
    if slot == "ref" and trial.design == "mushra":
        return REFERENCE
    names = slots(trial)
    return trial.stimuli[names.index(slot)] if slot in names else None


def describe(trial: Trial, material: Material) -> dict:
    """The trial as the page sees it: design, slots, question and the sentence (not for
    intelligibility: the listener must not read what to hear)."""
    item = material.items[trial.item]
    question = QUESTIONS.get(trial.design) or (
        f"How much does this sound like {material.describe(item.tag)}? "
        "1 = not at all, 5 = completely.")
    shown = {"design": trial.design, "slots": slots(trial), "question": question}
    if trial.design != "intelligibility":
        shown["text"] = item.text
    if trial.design == "mushra":
        shown["reference"] = "ref"
    return shown


def _int(value, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return value


def judgement_rows(trial: Trial, answer) -> list[tuple[str, str | None, str]]:
    """``(system_a, system_b, answer)`` rows for a valid answer; Refused otherwise."""
    design, stim = trial.design, trial.stimuli
    if design == "ab":
        if not isinstance(answer, str) or answer not in AB_CHOICES:
            raise Refused(f"an AB answer is one of {sorted(AB_CHOICES)}, got {answer!r}")
        return [(stim[0], stim[1], AB_CHOICES[answer])]
    if design == "cmos":
        return [(stim[0], stim[1], str(_int(answer, *CMOS_RANGE, "a CMOS answer")))]
    if design == "mushra":
        names = slots(trial)
        if not isinstance(answer, dict) or sorted(answer) != sorted(names):
            raise Refused(f"a MUSHRA answer rates exactly the slots {names}")
        return [(stim[names.index(k)], None, str(_int(v, *MUSHRA_RANGE, f"slot {k}")))
                for k, v in answer.items()]
    if design == "accent":
        return [(stim[0], None, str(_int(answer, *ACCENT_RANGE, "an accent answer")))]
    if design == "intelligibility":
        if not isinstance(answer, str) or not answer.strip() or len(answer) > MAX_TEXT \
                or any(ord(c) < 32 for c in answer):
            raise Refused(f"a transcript is one line of 1 to {MAX_TEXT} characters")
        return [(stim[0], None, " ".join(answer.split()))]
    raise Refused(f"unknown design {design!r}")


def elapsed(value) -> int:
    return _int(value, 0, MAX_ELAPSED_MS, "elapsed_ms")
