"""Files and folders written whole or not at all.

Every write goes to a temporary name beside its target, then is renamed over it, so a crash
never leaves a half-written file. A write that fails removes its temporary file or folder before
the error goes up. A killed process cannot clean up, so temporaries carry the writer's pid
(``.NAME.PID.kani-tmp...``) and :func:`clean_leftovers` (called by every writer on its target's
folder, once per folder and process) removes those whose process is gone; a live writer's temporaries are left alone.

Libraries report a full disk in their own words (libsndfile: "System error", torch: "unexpected
pos", safetensors: "I/O error ... os error 28"); a failed write here is re-raised as the
:class:`OSError` it was (``ENOSPC`` and the target path), so the CLI can name it in one line.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

MARK = ".kani-tmp"
LOW_SPACE = 1 << 20  # bytes free below which a failed write is taken for a full disk
_LEFTOVER = re.compile(r"^\..*\.(\d+)\.kani-tmp")


def _prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}{MARK}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


_cleaned: set[str] = set()  # folders already swept by this process


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    if key not in _cleaned:
        clean_leftovers(folder)
        _cleaned.add(key)


def clean_leftovers(folder: str | Path) -> list[Path]:
    """Remove temporaries of dead writers in ``folder``; returns what was removed."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if not match or _alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def as_os_error(err: BaseException, path: Path) -> OSError | None:
    """The operating system's error behind a failed write to ``path``, if one can be told."""
    if isinstance(err, OSError) and err.errno is not None:
        if err.filename is None:  # a failed f.write() names no file
            return OSError(err.errno, os.strerror(err.errno), str(path))
        return err
    if not isinstance(err, Exception):
        return None
    match = re.search(r"os error (\d+)", str(err))  # Rust's io::Error names the errno
    if match:
        code = int(match.group(1))
        return OSError(code, os.strerror(code), str(path))
    if not isinstance(err, RuntimeError):  # libsndfile and torch report I/O as RuntimeError
        return None
    try:
        stat = os.statvfs(path.parent)
    except OSError:
        return None
    if stat.f_bavail * stat.f_frsize < LOW_SPACE:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return None


def _reraise(err: BaseException, path: Path, cleanup: Callable[[], None] = lambda: None):
    translated = as_os_error(err, path)  # before cleanup frees the space it ran out of
    cleanup()
    if translated is None or translated is err:
        raise err
    raise translated from err


def write_bytes(path: str | Path, data: bytes) -> Path:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return write_file(path, write)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    """One JSON object per line (UTF-8, not ASCII-escaped), the whole file or nothing."""
    return write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_json(path: str | Path, value, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(value, ensure_ascii=False, indent=indent) + "\n")


def _replace(target: Path, make: Callable[[Path], Path], write: Callable[[Path], None],
             swap: Callable[[Path, Path], None], remove: Callable[[Path], None]) -> Path:
    """The one write-beside-then-rename: ``make`` a temporary beside ``target``, ``write`` it,
    ``swap`` it in; on any failure ``remove`` the temporary and re-raise (a full disk as such)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _sweep_once(target.parent)
        tmp = make(target)
    except OSError as err:
        _reraise(err, target)
    try:
        write(tmp)
        swap(tmp, target)
    except BaseException as err:
        _reraise(err, target, lambda: remove(tmp))
    return target


def umask() -> int:
    """This process's umask (read without changing it where Linux says it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _usual_mode(tmp: Path, folder: bool) -> None:
    """A temporary is made private (mkstemp: 600, mkdtemp: 700); the final file or folder gets
    the mode any ordinary tool would give it under the user's umask, so others can read it. In a
    folder, so does everything a library wrote there (safetensors writes its files 600)."""
    mask = umask()
    os.chmod(tmp, (0o777 if folder else 0o666) & ~mask)
    if folder:
        for root, dirs, files in os.walk(tmp):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o777 & ~mask, follow_symlinks=False)
            for name in files:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o666 & ~mask)


def _temp_file(target: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=_prefix(target), dir=target.parent)  # no .ckpt: no glob finds it
    os.close(fd)
    return Path(tmp)


def _swap_file(tmp: Path, target: Path) -> None:
    _usual_mode(tmp, folder=False)
    os.replace(tmp, target)


def _swap_folder(tmp: Path, out: Path) -> None:
    _usual_mode(tmp, folder=True)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def write_file(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` with a temporary file path beside ``path``, then rename it over."""
    return _replace(Path(path), _temp_file, write, _swap_file,
                    lambda tmp: tmp.unlink(missing_ok=True))


def write_audio(path: str | Path, audio, sample_rate: int, **options) -> Path:
    """An audio file through soundfile (``options``: subtype, format...), written atomically."""
    import soundfile as sf

    options.setdefault("format", Path(path).suffix.lstrip(".").upper() or "WAV")
    return write_file(path, lambda tmp: sf.write(str(tmp), audio, sample_rate, **options))


def write_npy(path: str | Path, array) -> Path:
    """A NumPy ``.npy`` file (no pickles inside), written atomically."""
    import numpy as np

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:  # a file object: numpy adds no .npy to the temporary name
            np.save(fh, array, allow_pickle=False)

    return write_file(path, write)


def write_folder(out: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a fresh folder beside ``out``, then replace ``out`` with it."""
    return _replace(Path(out), lambda target: Path(tempfile.mkdtemp(prefix=_prefix(target),
                                                                    dir=target.parent)),
                    write, _swap_folder, lambda tmp: shutil.rmtree(tmp, ignore_errors=True))
