"""Project exceptions. User mistakes raise these; the CLI prints one line and exits 2."""
from __future__ import annotations

import errno

# What a user should read for the errors the operating system gives most often.
OS_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ELOOP: "symlink loop",
    errno.ENOENT: "file not found",
    errno.ENOTDIR: "not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files",
    errno.EIO: "input/output error",
}


class KaniAdaptError(ValueError):
    """Base class of every error caused by user input (files, configs, arguments)."""


class ConfigError(KaniAdaptError):
    """A config value or command-line argument is wrong."""


class DataError(KaniAdaptError):
    """A data item (file, utterance, token sequence) is unusable."""


class CheckpointError(KaniAdaptError):
    """A checkpoint on disk does not match the KaniTTS2 format."""


def describe_os_error(err: OSError) -> str:
    """``reason: PATH`` for an error the operating system gave (one line)."""
    reason = OS_REASONS.get(err.errno) or " ".join(str(err.strerror or err).split()).lower()
    paths = [str(p) for p in (err.filename, err.filename2) if p not in (None, "")]
    return f"{reason}: {' -> '.join(paths)}" if paths else reason


class PreflightError(ConfigError):
    """What a command found wrong before any work (:mod:`kani_adapt.core.preflight`): one line per
    problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)
