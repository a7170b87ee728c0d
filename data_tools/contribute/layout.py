"""Find the clips of a contribution: ``DIR/audio/<split>/<speaker>/<clip>.<ext>`` + transcript.

Every file the gate reads (clips, transcripts, the card) passes :func:`regular_file`: a regular
file whose real path lies inside the contribution. Folders linked in are never followed, and
whatever is not read is still named in the report with its reason (a linked or unreadable
folder, a stray file such as a pickle or a parquet), so one pass reports everything.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from data_tools.contribute.config import SPLITS
from data_tools.contribute.records import ERROR, WARNING, Clip, Problem
from kani_adapt.core.untrusted import hidden_in_name, visible_name
from data_tools.inputs.layouts import AUDIO_SUFFIXES, inside, read_sidecar

AUDIO_DIR = "audio"
CARD_NAME = "README.md"
TEXT_SUFFIXES = (".txt", ".lab")
FILE_FIXES = {"outside_dataset_folder": "copy the file into the dataset instead of linking it",
              "broken_link": "the link points to nothing: copy the file in",
              "symlink_loop": "the link leads back to itself: copy the file in",
              "not_a_regular_file": "put an ordinary file there"}


def regular_file(root: Path, path: Path) -> str:
    """"" when ``path`` is a regular file whose real path lies inside ``root``, else why not
    (missing, broken_link, symlink_loop, outside_dataset_folder, not_a_regular_file)."""
    try:
        real = path.resolve(strict=True)
    except RuntimeError:
        return "symlink_loop"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symlink_loop"
        return "broken_link" if path.is_symlink() else "missing"
    if not inside(root, real):
        return "outside_dataset_folder"
    try:
        return "" if stat.S_ISREG(os.stat(real).st_mode) else "not_a_regular_file"
    except OSError:
        return "missing"


def transcript_of(audio: Path, root: Path) -> tuple[str | None, str]:
    """(text, "") or (None, reason) for the ``.txt``/``.lab`` beside ``audio``."""
    for suffix in TEXT_SUFFIXES:
        side = audio.with_suffix(suffix)
        if side.exists() or side.is_symlink():
            refused = regular_file(root, side)
            if refused:
                return None, refused
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


def walk(root: Path, folder: Path) -> tuple[list[Path], list[Problem]]:
    """Every file under ``folder`` (links to files included; links to folders are problems,
    never followed) and a problem for each folder that cannot be read."""
    files, problems, stack = [], [], [folder]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError as err:
            problems.append(Problem("layout", "unreadable_folder", f"{_rel(here, root)}/: "
                                    f"{err.strerror or err}; its files were not checked: make "
                                    "it readable"))
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                stack.append(path)
            elif entry.is_symlink() and path.is_dir():
                problems.append(Problem("layout", "linked_folder", f"{_rel(path, root)}/: a "
                                        "link to a folder, not followed: copy the folder into "
                                        "the dataset instead of linking it"))
            else:
                files.append(path)
    return sorted(files), problems


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def strays(root: Path) -> list[Problem]:
    """Everything at the top of ``root`` besides the card and the audio folder."""
    try:
        names = sorted(os.listdir(root))
    except OSError as err:
        return [Problem("layout", "unreadable_folder", f"{root}: {err.strerror or err}")]
    return [_stray(root / name, root) for name in names if name not in (CARD_NAME, AUDIO_DIR)]


def _stray(path: Path, root: Path) -> Problem:
    kind = "a folder" if path.is_dir() else f"a {path.suffix or 'suffix-less'} file"
    return Problem("layout", "stray_file", f"{_rel(path, root)}: {kind} that is no part of a "
                   "contribution (audio, transcripts, README.md); neither checked nor packaged: "
                   "remove it", WARNING)


def discover(root: Path) -> tuple[list[Clip], list[Problem]]:
    """Every audio file under ``root/audio`` as a Clip; layout problems as Problems."""
    base = root / AUDIO_DIR
    problems = strays(root)
    if base.is_symlink():
        return [], problems + [Problem("layout", "linked_folder", f"{AUDIO_DIR}/: a link, not "
                                       "followed: copy the folder into the dataset")]
    if not base.is_dir():
        return [], problems + [Problem("layout", "audio_folder_missing",
                                       f"{base}: no audio folder; put clips in "
                                       f"{AUDIO_DIR}/<split>/<speaker>/<clip>.wav")]
    files, found = walk(root, base)
    problems += found
    audio = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
    stems = {p.with_suffix("") for p in audio}
    for path in files:
        if path.suffix.lower() in TEXT_SUFFIXES:
            if path.with_suffix("") not in stems:
                problems.append(Problem("transcripts", "transcript_without_audio",
                                        f"{_rel(path, root)}: no audio file beside it", WARNING))
        elif path.suffix.lower() not in AUDIO_SUFFIXES:
            problems.append(_stray(path, root))
    clips = []
    for path in audio:
        clip, found = _clip(path, base, root)
        problems += found
        clips += [clip] if clip else []
    return clips, problems + hidden_names(clips)


def _clip(path: Path, base: Path, root: Path) -> tuple[Clip | None, list[Problem]]:
    rel = path.relative_to(base)
    where = place(rel)
    if isinstance(where, str):
        return None, [Problem("layout", "misplaced_file", where)]
    refused = regular_file(root, path)
    if refused:
        return None, [Problem("layout", refused, f"{_rel(path, root)}: "
                              f"{FILE_FIXES.get(refused, refused)}")]
    text, error = transcript_of(path, root)
    return Clip(rel.with_suffix("").as_posix(), path, *where, text, error), []


def hidden_names(clips: list[Clip]) -> list[Problem]:
    """Speaker folders and clip names holding characters that change how text is shown (a
    right-to-left override makes one name read as another): one problem per name."""
    out, seen = [], set()
    for clip in clips:
        stem = clip.id.rsplit("/", 1)[1]
        for name, where in ((clip.speaker, f"{clip.split}/{clip.speaker}/"), (stem, clip.id)):
            hidden = hidden_in_name(name)
            if hidden and where not in seen:
                seen.add(where)
                out.append(Problem("layout", "hidden_characters", f"{AUDIO_DIR}/"
                                   f"{visible_name(where)}: the name holds {', '.join(hidden)}, "
                                   "which changes how text around it is shown; rename it "
                                   "with letters, digits, '-' and '_'", ERROR))
    return out


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
