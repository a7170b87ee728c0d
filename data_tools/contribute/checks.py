"""The gate's decisions: pure functions from clips, measurements and the card to Problems."""
from __future__ import annotations

from collections import Counter, defaultdict

from data_tools.stages import filter as filter_stage
from data_tools.stages.filter import FilterConfig
from data_tools.contribute.card import Card
from data_tools.contribute.layout import FILE_FIXES
from data_tools.contribute.measure import BOUNDS
from data_tools.contribute.records import WARNING, Clip, Measured, Problem

AUDIO = "audio/"


def transcript_problems(clips: list[Clip]) -> list[Problem]:
    fixes = {**FILE_FIXES, "missing_transcript": "add a .txt file with the same name",
             "empty_transcript": "write what is said into the .txt file",
             "transcript_not_utf8": "save the transcript as UTF-8",
             "transcript_too_long": "a transcript is the words of one clip"}
    return [Problem("transcripts", c.text_error, f"{AUDIO}{c.id}: {fixes.get(c.text_error, '')}")
            for c in clips if c.text is None]


def audio_problems(measured: list[Measured]) -> list[Problem]:
    out = []
    for m in measured:
        if not m.readable:
            reason, _, detail = m.audio_error.partition(": ")
            fix = "" if reason in BOUNDS else "; re-export the file as WAV or FLAC"
            out.append(Problem("audio", reason, f"{AUDIO}{m.clip.id}: {detail or reason}{fix}"))
    return out


def quality_problems(measured: list[Measured], cfg: FilterConfig,
                     max_bad_fraction: float) -> list[Problem]:
    """Each clip breaking a filter rule is a warning (training drops it); too many of them
    reject the dataset, because the hours it claims would then not be usable."""
    out, bad = [], 0
    readable = [m for m in measured if m.readable and m.features is not None]
    for m in readable:
        reasons = filter_stage.item_reasons(m.features, m.orig_sample_rate, m.clip.text or "x",
                                             cfg)
        bad += bool(reasons)
        out += [Problem("quality", r, f"{AUDIO}{m.clip.id}: {d}", WARNING) for r, d in reasons]
    if readable and bad / len(readable) > max_bad_fraction:
        out.append(Problem("quality", "too_many_poor_clips", f"{bad} of {len(readable)} clips "
                           f"break a quality rule (limit {max_bad_fraction:.0%}); re-record or "
                           "remove them"))
    return out


def duplicate_problems(measured: list[Measured], similarity: float) -> list[Problem]:
    """Exact copies (same bytes) and near copies (same energy envelope), reusing the filter's
    rule; a copy across splits leaks test audio into training."""
    items = [(m.clip.id, m.sha256, m.duration, m.features.fingerprint) for m in measured
             if m.readable and m.features is not None]
    return [Problem("duplicates", "duplicate", f"{AUDIO}{dup} is the same audio as "
                    f"{AUDIO}{kept}; remove one") for dup, kept in
            sorted(filter_stage.duplicates(items, similarity).items())]


def split_problems(clips: list[Clip]) -> list[Problem]:
    """A speaker in two splits lets a test score measure memorised voices, not the accent."""
    splits = defaultdict(set)
    for c in clips:
        splits[c.speaker].add(c.split)
    return [Problem("splits", "speaker_in_several_splits", f"speaker {s!r} appears in "
                    f"{', '.join(sorted(v))}; keep each speaker in one split")
            for s, v in sorted(splits.items()) if len(v) > 1]


def speaker_problems(card: Card, clips: list[Clip]) -> list[Problem]:
    """The card's speakers list must describe the audio: same speakers, same clip counts."""
    found = Counter(c.speaker for c in clips)
    listed = {s.id: s.clips for s in card.speakers}
    out = [Problem("speakers", "speaker_not_in_card", f"{AUDIO}*/{s}/: {n} clips by a speaker "
                   "the card does not list; add it to 'speakers:'")
           for s, n in sorted(found.items()) if s not in listed]
    for sid, count in listed.items():
        if sid not in found:
            out.append(Problem("speakers", "speaker_without_audio", f"README.md: speaker "
                               f"{sid!r} has no audio under {AUDIO}<split>/{sid}/"))
        elif found[sid] != count:
            out.append(Problem("speakers", "speaker_count_mismatch", f"README.md: speaker "
                               f"{sid!r} lists {count} clips but has {found[sid]}; correct "
                               "'clips:'"))
    return out


def hours_by_accent(card: Card, measured: list[Measured]) -> dict[str, dict[str, float]]:
    """{accent: {speaker: hours}} over readable clips of speakers the card lists."""
    accent_of = {s.id: s.accent for s in card.speakers}
    out = {a: {} for a in card.accents}
    for m in measured:
        accent = accent_of.get(m.clip.speaker)
        if m.readable and accent in out:
            hours = out[accent]
            hours[m.clip.speaker] = hours.get(m.clip.speaker, 0.0) + m.duration / 3600
    return out


def accent_problems(hours: dict[str, dict[str, float]], min_hours: float, min_speakers: int,
                    max_share: float) -> list[Problem]:
    out = []
    for accent, per_speaker in sorted(hours.items()):
        total = sum(per_speaker.values())
        if total < min_hours:
            out.append(Problem("accents", "too_few_hours", f"accent {accent!r} has {total:.3f} h "
                               f"of readable audio; at least {min_hours:g} h is needed"))
        if len(per_speaker) < min_speakers:
            out.append(Problem("accents", "too_few_speakers", f"accent {accent!r} has "
                               f"{len(per_speaker)} speaker(s); at least {min_speakers} are needed "
                               "so the tag learns the accent, not one voice"))
        top = max(per_speaker.items(), key=lambda kv: kv[1], default=None)
        if top and total > 0 and top[1] / total > max_share and len(per_speaker) > 1:
            out.append(Problem("accents", "dominant_speaker", f"accent {accent!r}: speaker "
                               f"{top[0]!r} holds {top[1] / total:.0%} of the hours", WARNING))
    return out
