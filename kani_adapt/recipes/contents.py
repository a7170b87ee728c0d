"""What a recipe stage reads, by content: SHA-256 digests of files, folders, codec archives and
NeMo manifests with their audio.

The bytes decide, never the times. Reading every byte of a dataset on every run would be slow, so
each file's digest is kept in ``WORK_DIR/digests.json`` beside the size, modification time,
change time and inode it was read at, and read again only when one of those differs. Size and
modification time alone would not do: a tool can set a modification time back (``touch -d``,
``cp -p``, ``rsync -t``) over new bytes of the same length. No tool can set the change time,
which the kernel moves on every write, and an atomic write (``kani_adapt.core.atomic``, every
stage's way) makes a new inode. A copy or a ``touch`` changes them too and costs one more read,
never a rerun: the bytes, and so the digest, are the same.

The times move in ticks of the file system's clock (a second on ext3 or HFS+, two on FAT), so a
rewrite of the same length in the tick the file was read in leaves all four values as they were.
A digest is therefore trusted only when the file's last change lies at least ``SETTLE_NS``
before the digest was taken (as git treats "racily clean" entries); a file read sooner after it
was written is read again the next time it is asked for.

Not content: lock folders and atomic writers' temporaries in any folder, the names a read leaves
out (a training run's TensorBoard events carry wall times), and a ``.nemo`` archive's tar headers
(NeMo stamps the time of saving into them: the same codec saved twice has other bytes, the same
members). A NeMo manifest is read with every audio file it lists.
"""
from __future__ import annotations

import hashlib
import json
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from kani_adapt.core.atomic import MARK, write_text

CACHE = "digests.json"
MISSING = "missing"
CHUNK = 1 << 20
SETTLE_NS = 2 * 10**9  # the coarsest tick of a file system's times (FAT's two seconds)
NOT_CONTENT = (".locks",)  # the folder locks (kani_adapt.core.locks)


@dataclass(frozen=True)
class Read:
    """A file or folder a stage reads; ``audio``: a NeMo manifest, read with the audio it lists;
    ``leave_out``: names below a folder that are not content."""

    path: Path
    audio: bool = False
    leave_out: tuple[str, ...] = ()


class Digests:
    """Content digests of what stages read, cached in ``work/digests.json``."""

    def __init__(self, work: Path, stat=os.stat, clock=time.time_ns):
        self.path = Path(work) / CACHE
        self.stat, self.clock = stat, clock  # tests: a coarser file system, a later moment
        try:
            self.cache = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except (OSError, ValueError):  # a damaged cache costs one more read, nothing else
            self.cache = {}
        self.read_files = 0  # files whose bytes were read in this run (figures, tests)

    def of(self, read: Read) -> str:
        path = Path(read.path)
        if not path.exists():
            return MISSING
        if path.is_dir():
            return self._folder(path, read.leave_out)
        if read.audio:
            return self._manifest(path)
        return self.file(path)

    def file(self, path: Path) -> str:
        taken, stat = self.clock(), self.stat(path)
        key, signature = str(path.absolute()), [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns,
                                                stat.st_ino]
        known = self.cache.get(key)
        if known is not None and known[:4] == signature and _settled(known):
            return known[4]
        self.read_files += 1
        digest = _archive(path) if path.suffix == ".nemo" else _bytes(path)
        self.cache[key] = [*signature, digest, taken]
        return digest

    def _folder(self, folder: Path, leave_out: tuple[str, ...]) -> str:
        h = hashlib.sha256()
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if _content(d, leave_out))
            for name in sorted(f for f in files if _content(f, leave_out)):
                path = Path(root) / name
                if path.is_file():
                    h.update(f"{path.relative_to(folder).as_posix()}\0{self.file(path)}\n".encode())
        return h.hexdigest()

    def _manifest(self, path: Path) -> str:
        from kani_adapt.codec.manifest import read_nemo_manifest
        from kani_adapt.core.errors import DataError

        h = hashlib.sha256(self.file(path).encode())
        try:
            clips = read_nemo_manifest(path)
        except DataError:  # the stage reading it says what is wrong
            return h.hexdigest()
        for clip in clips:
            audio = Path(clip.audio_filepath)
            h.update(f"{audio}\0{self.file(audio) if audio.is_file() else MISSING}\n".encode())
        return h.hexdigest()

    def save(self) -> None:
        """Write the cache, without the files that are gone."""
        kept = {k: v for k, v in self.cache.items() if os.path.exists(k)}
        write_text(self.path, json.dumps(kept, separators=(",", ":")) + "\n")


def _settled(entry: list) -> bool:
    """Whether a cached digest was taken a whole tick after its file last changed, so that any
    later write moved the file's times (an entry without the time it was taken: never)."""
    return len(entry) > 5 and max(entry[1], entry[2]) + SETTLE_NS <= entry[5]


def _content(name: str, leave_out: tuple[str, ...]) -> bool:
    return name not in NOT_CONTENT and MARK not in name and name not in leave_out


def _bytes(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _archive(path: Path) -> str:
    """A tar archive's digest from its members' names and contents (a file that is no tar
    archive: from its bytes)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            h = hashlib.sha256()
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if member.isfile():
                    inner = hashlib.sha256()
                    with tar.extractfile(member) as f:
                        while chunk := f.read(CHUNK):
                            inner.update(chunk)
                    h.update(f"{member.name.removeprefix('./')}\0{inner.hexdigest()}\n".encode())
            return h.hexdigest()
    except (tarfile.TarError, OSError, EOFError):
        return _bytes(path)
