"""Every file of an input folder accounted for, and transcripts that hide characters.

Ingest turns audio files into items (kept or rejected with a reason). What no item uses is
listed here, so that nothing in an input folder is passed over in silence: a transcript
without its audio (``transcript_without_audio``), audio that a table layout does not name
(``audio_not_listed``), and any other file (``not_audio``, with its suffix). Transcripts holding
invisible or control characters (a byte-order mark, NUL, zero-width characters, bidi controls)
are listed per file with the characters; the text frontend removes them, ingest says so.
The result is ``<work>/ingest/inputs.json``, which the report shows.
"""
from __future__ import annotations

import os
import unicodedata
from collections import Counter
from pathlib import Path

from kani_adapt.audio import AUDIO_SUFFIXES
from data_tools.inputs.layouts import SPOKEN_SUFFIX
from kani_adapt.core.untrusted import md, md_code

TRANSCRIPT_SUFFIXES = (".txt", ".lab")
SHOWN = 20  # paths listed per reason in the report
_ALLOWED_CONTROLS = {"\n", "\r", "\t"}


def hidden_characters(text: str) -> dict[str, int]:
    """{"U+200B ZERO WIDTH SPACE": count} of the invisible and control characters in ``text``."""
    found = Counter(ch for ch in text if ch not in _ALLOWED_CONTROLS
                    and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"))
    return {f"U+{ord(ch):04X} {unicodedata.name(ch, 'CONTROL CHARACTER')}": n
            for ch, n in sorted(found.items())}


def text_warnings(candidates) -> list[dict]:
    """One entry per transcript (file, or table line) with hidden characters."""
    out = []
    for c in candidates:
        chars = hidden_characters(c.text or "")
        if chars:
            out.append({"file": c.source, "id": c.id, "characters": chars})
    return out


def unused_files(roots: list[Path], candidates, tables: set[Path]) -> list[dict]:
    """Files under ``roots`` that no candidate uses, each with its reason."""
    used = {c.audio.absolute() for c in candidates}
    used |= {c.audio.with_suffix(s).absolute() for c in candidates
             for s in (*TRANSCRIPT_SUFFIXES, SPOKEN_SUFFIX)}
    used |= {t.absolute() for t in tables}
    out = []
    for root in roots:
        for folder, dirs, files in os.walk(root):  # links are not followed: ingest decides those
            dirs[:] = sorted(d for d in dirs if d != ".locks")
            for name in sorted(files):
                path = Path(folder, name)
                if path.absolute() in used:
                    continue
                suffix = path.suffix.lower()
                reason = ("transcript_without_audio" if suffix in TRANSCRIPT_SUFFIXES else
                          "audio_not_listed" if suffix in AUDIO_SUFFIXES else "not_audio")
                out.append({"file": str(path), "reason": reason, "suffix": suffix or "(none)"})
    return out


def markdown(inputs: dict) -> list[str]:
    """The report's lines about input files nothing uses and transcripts hiding characters."""
    unused, warnings = inputs.get("unused_files", []), inputs.get("text_warnings", [])
    lines = ["", "## Input files not used", ""]
    if not unused:
        lines.append("Every file in the input folders was used.")
    for reason, n in sorted(Counter(u["reason"] for u in unused).items()):
        files = [u["file"] for u in unused if u["reason"] == reason]
        more = f" (and {len(files) - SHOWN} more)" if len(files) > SHOWN else ""
        lines.append(f"- {reason} ({n}): " + ", ".join(md_code(f) for f in files[:SHOWN]) + more)
    lines += sources_markdown(inputs.get("sources") or [])
    lines += ["", "## Transcripts with invisible or control characters", ""]
    if not warnings:
        lines.append("None.")
    for w in warnings[:SHOWN * 5]:
        chars = ", ".join(f"{name} x{n}" for name, n in w["characters"].items())
        lines.append(f"- {md_code(w['file'])}: {md(chars)}")
    return lines


def licence_words(source: dict) -> str:
    """"cc-by-4.0", or "other (My Licence, https://...)" for a licence of its own."""
    words = source.get("license") or "not stated"
    extra = [source[k] for k in ("license_name", "license_link") if source.get(k)]
    return f"{words} ({', '.join(extra)})" if extra else words


def sources_markdown(sources: list[dict]) -> list[str]:
    """Each packaged contribution: its name, licence, the gate's checks that did not run and the
    thresholds it was given (all written by strangers: escaped)."""
    if not sources:
        return []
    lines = ["", "## Packaged contributions", ""]
    for s in sources:
        lines.append(f"- {md_code(s.get('source', ''))} ({md(s.get('pretty_name', ''))}): "
                     f"licence {md(licence_words(s))}")
        for item in s.get("not_checked") or []:
            if isinstance(item, dict):
                lines.append(f"  - not checked by the gate: {md(item.get('check', ''))} "
                             f"({md(item.get('why', ''))})")
        for key, value in (s.get("thresholds_changed") or {}).items():
            if isinstance(value, dict):
                lines.append(f"  - gate threshold {md(key)}: {md(value.get('value'))} (default "
                             f"{md(value.get('default'))})")
    return lines
