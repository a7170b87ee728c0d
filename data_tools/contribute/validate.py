"""``contribute validate``: read everything, run every check, report once.

Reading is the only slow part (each clip is decoded once for its measurements, within the
bounds of measure.py); the decisions are the pure functions in checks.py and card.py.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from data_tools.stages.align import AlignConfig
from data_tools.contribute import checks, layout, report
from data_tools.contribute.card import read_card
from data_tools.contribute.config import ContributeConfig, changed_from_defaults
from data_tools.contribute.measure import measure_clip
from data_tools.contribute.records import (CHECKS, ERROR, FAILED, PASSED, SKIPPED, WARNING,
                                           CheckResult, Measured, Problem, Validation)
from kani_adapt.core.errors import ConfigError, DataError


def alignment(measured: list[Measured], cfg: AlignConfig,
              max_bad_fraction: float) -> tuple[CheckResult, list[Problem]]:
    """Transcript/audio agreement by forced alignment; skipped (never passed) without MFA."""
    from data_tools.stages import align
    from data_tools.speech import mfa
    from data_tools.records import Utterance

    if cfg.enabled == "off":
        return CheckResult("alignment", SKIPPED, "align.enabled is off"), []
    if mfa.find_mfa(cfg.mfa_command) is None:
        if cfg.enabled == "on":
            mfa.require_mfa(cfg.mfa_command)  # raises with the install command
        return CheckResult("alignment", SKIPPED, "Montreal Forced Aligner is not installed "
                           f"(`{mfa.INSTALL_HINT}`); transcripts were not checked against the "
                           "audio"), []
    utts = [Utterance(id=m.clip.id, audio=str(m.clip.path.resolve()), text=m.clip.text,
                      speaker=m.clip.speaker, duration=m.duration)
            for m in measured if m.readable and m.clip.text]
    try:
        with tempfile.TemporaryDirectory(prefix="contribute-align-") as work:
            words = align.align_corpus(utts, Path(work), cfg)
    except DataError as err:
        return CheckResult("alignment", FAILED, "MFA did not run"), [
            Problem("alignment", "aligner_failed", str(err))]
    decisions = {u.id: align.decide(u, words.get(u.id), cfg) for u in utts}
    problems = [Problem("alignment", d, f"{checks.AUDIO}{i}: the transcript does not match "
                        "the speech; check the .txt file", WARNING)
                for i, d in sorted(decisions.items()) if isinstance(d, str)]
    if utts and len(problems) / len(utts) > max_bad_fraction:
        problems.append(Problem("alignment", "too_many_misaligned", f"{len(problems)} of "
                                f"{len(utts)} transcripts do not match their audio"))
    return CheckResult("alignment", PASSED), problems


def outcome(name: str, problems: list[Problem]) -> CheckResult:
    mine = [p for p in problems if p.check == name]
    errors = sum(p.severity == ERROR for p in mine)
    warnings = len(mine) - errors
    note = ", ".join(f"{n} {w}{'s' * (n > 1)}" for n, w in ((errors, "error"),
                                                           (warnings, "warning")) if n)
    return CheckResult(name, FAILED if errors else PASSED, note)


def validate(root: Path, cfg: ContributeConfig, progress: bool = False) -> Validation:
    """Check the contribution at ``root``; ConfigError only when ``root`` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder; give the contributed dataset's folder")
    card, problems = read_card(root)
    clips, found = layout.discover(root)
    problems += found + layout.duplicate_ids(clips) + checks.transcript_problems(clips)
    measured = [measure_clip(c, cfg) for c in _progress(clips, progress)]
    problems += checks.audio_problems(measured)
    problems += checks.quality_problems(measured, cfg.filter, cfg.max_bad_clip_fraction)
    align_result, found = alignment(measured, cfg.align, cfg.max_bad_clip_fraction)
    problems += found + checks.duplicate_problems(measured, cfg.filter.near_duplicate_similarity)
    problems += checks.split_problems(clips)
    hours = {}
    if card is not None:
        hours = checks.hours_by_accent(card, measured)
        problems += checks.speaker_problems(card, clips)
        problems += checks.accent_problems(hours, cfg.min_hours, cfg.min_speakers,
                                           cfg.max_speaker_share)
    results = [align_result if n == "alignment" and align_result.status != PASSED
               else outcome(n, problems) for n in CHECKS]
    if card is None:  # without a card the speaker and accent checks could not run
        results = [CheckResult(r.name, SKIPPED, "no readable card") if r.name in
                   ("speakers", "accents") else r for r in results]
    return Validation(str(root), results, problems, report.statistics(measured, hours, card),
                      measured, not_checked(results), changed_from_defaults(cfg))


# The gate never runs speech recognition: the given transcripts are compared with the speech only
# by forced alignment (where MFA is installed), never transcribed.
NO_ASR = {"check": "transcripts against speech recognition",
          "why": "the gate does not transcribe the audio; `data-tools prepare` with "
                 "transcribe.verify: true compares them"}


def not_checked(results: list[CheckResult]) -> list[dict]:
    """Every check that did not run, with why (the card and validation.json list them)."""
    return [{"check": r.name, "why": r.note or "skipped"} for r in results
            if r.status == SKIPPED] + [NO_ASR]


def _progress(items: list, show: bool):
    if not show:
        return items
    from kani_adapt.core.console import progress

    return progress(items, desc="measure", unit="clip")
