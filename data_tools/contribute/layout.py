"""Find the clips of a contribution: ``DIR/audio/<split>/<speaker>/<clip>.<ext>`` + transcript.

Files that break the layout become problems rather than exceptions, so one pass reports them all.
"""
from __future__ import annotations

from pathlib import Path

from data_tools.contribute.config import SPLITS
from data_tools.contribute.records import WARNING, Clip, Problem
from data_tools.inputs.layouts import AUDIO_SUFFIXES, inside, read_sidecar

AUDIO_DIR = "audio"
TEXT_SUFFIXES = (".txt", ".lab")


def transcript_of(audio: Path, root: Path) -> tuple[str | None, str]:
    """(text, "") or (None, reason) for the ``.txt``/``.lab`` beside ``audio``."""
    for suffix in TEXT_SUFFIXES:
        side = audio.with_suffix(suffix)
        if side.exists():
            if not inside(root, side):
                return None, "outside_dataset_folder"
            text, error = read_sidecar(side)
            if text is None:
                return None, error
            return (text, "") if text else (None, "empty_transcript")
    return None, "missing_transcript"


def place(rel: Path) -> tuple[str, str] | str:
    """(split, speaker) for a path relative to ``DIR/audio``, or why it is misplaced."""
    if len(rel.parts) != 3:
        return (f"{AUDIO_DIR}/{rel.as_posix()}: audio must lie at "
                f"{AUDIO_DIR}/<split>/<speaker>/<clip> (split: {', '.join(SPLITS)})")
    split, speaker = rel.parts[0], rel.parts[1]
    if split not in SPLITS:
        return (f"{AUDIO_DIR}/{rel.as_posix()}: unknown split folder {split!r}; "
                f"rename it to one of {', '.join(SPLITS)}")
    return split, speaker


def discover(root: Path) -> tuple[list[Clip], list[Problem]]:
    """Every audio file under ``root/audio`` as a Clip; layout problems as Problems."""
    base = root / AUDIO_DIR
    clips, problems = [], []
    if not base.is_dir():
        problems.append(Problem("layout", "audio_folder_missing",
                                f"{base}: no audio folder; put clips in "
                                f"{AUDIO_DIR}/<split>/<speaker>/<clip>.wav"))
        return clips, problems
    files = sorted(p for p in base.rglob("*") if p.is_file() or p.is_symlink())
    audio = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
    stems = {p.with_suffix("") for p in audio}
    for path in files:
        if path.suffix.lower() in TEXT_SUFFIXES and path.with_suffix("") not in stems:
            problems.append(Problem("transcripts", "transcript_without_audio",
                                    f"{path.relative_to(root)}: no audio file beside it",
                                    WARNING))
    for path in audio:
        rel = path.relative_to(base)
        where = place(rel)
        if isinstance(where, str):
            problems.append(Problem("layout", "misplaced_file", where))
            continue
        if not inside(root, path):
            problems.append(Problem("layout", "outside_dataset_folder",
                                    f"{path.relative_to(root)} resolves outside {root}; copy the "
                                    "file into the dataset instead of linking it"))
            continue
        text, error = transcript_of(path, root)
        clips.append(Clip(rel.with_suffix("").as_posix(), path, *where, text, error))
    return clips, problems


def duplicate_ids(clips: list[Clip]) -> list[Problem]:
    """Two files with one stem (a.wav and a.flac) would share an id and a transcript."""
    seen, out = set(), []
    for clip in clips:
        if clip.id in seen:
            out.append(Problem("layout", "duplicate_id",
                               f"{AUDIO_DIR}/{clip.id}: two audio files share this name; "
                               "keep one"))
        seen.add(clip.id)
    return out
