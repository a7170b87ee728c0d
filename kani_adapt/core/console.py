"""The console: kani-adapt's own lines by default; third-party chatter only with ``--verbose``.

NeMo, Lightning, transformers, datasets and OneLogger each print banners, scheduler dumps and
warnings that bury the few lines a user needs. ``setup()`` runs once per command, before any of
them is imported: it raises their loggers to ERROR, ignores warnings raised outside kani-adapt,
and turns library progress bars off. ``progress()`` is the one progress display: a tqdm bar on a
terminal, one log line every ``every`` seconds otherwise (logs and CI stay readable).

``working(what)`` keeps a long command from falling silent: while its block runs, a line
``eval: still loading the scorers (1:02 so far)`` comes whenever ``HEARTBEAT`` seconds passed
without a line of ours (``doing()`` says what is being done; a progress bar counts as a line).

Names from data reach the terminal through log records and a few printed lines: ``shown()``
spells out their control and bidi characters (``\u202e``), so a speaker or listener name cannot
reorder a line, hide what follows it, move the cursor or forge a line of its own. Our log
handler does it to every record's message.
"""
from __future__ import annotations

import copy
import logging
import os
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
OURS = ("kani_adapt", "data_tools")
NOISY = ("nemo_logger", "nemo", "lightning", "lightning.pytorch", "lightning.fabric",
         "pytorch_lightning", "lightning_fabric", "torch", "transformers", "datasets",
         "huggingface_hub", "peft", "nv_one_logger", "numba", "matplotlib", "urllib3", "fsspec", "lhotse", "onnxruntime",
         "speechmos", "filelock", "PIL", "h5py", "torio", "jiwer")
# Whichever of lightning / pytorch_lightning (NeMo imports both) is imported last owns the
# shared rank-zero logger, so all four names are set.
LEAVES = tuple(f"{pkg}.utilities.{mod}" for pkg in (
    "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")
    for mod in ("rank_zero", "seed"))
QUIET_ENV = {  # read by the libraries at import time
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONWARNINGS": "ignore",  # worker and DDP child processes start quiet too
}
_state = {"verbose": False, "configured": False}
HEARTBEAT = 30.0  # seconds of work without a line after which working() says it is still going
_spoken = {"at": time.monotonic(), "doing": ""}  # when a line of ours last came; what is done


def setup(verbose: bool = False) -> None:
    """Configure logging for one command (idempotent). Our loggers print INFO to stderr."""
    _state["verbose"] = verbose
    if not _state["configured"]:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        for name in OURS:
            logging.getLogger(name).addHandler(handler)
        _state["configured"] = True
    for name in OURS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose:
        for name in NOISY + LEAVES:
            logging.getLogger(name).setLevel(logging.NOTSET)
        warnings.resetwarnings()
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    # Checked first (inserted in front): warnings raised by our own code still show.
    for name in OURS:
        warnings.filterwarnings("default", module=rf"{name}(\.|$)")
    # NeMo sets its logger back to INFO when imported, and Lightning its own: a filter on
    # NeMo's logger object and levels on Lightning's leaf loggers survive those imports.
    for name in LEAVES:
        logging.getLogger(name).setLevel(logging.ERROR)
    nemo = logging.getLogger("nemo_logger")
    if not any(isinstance(f, _BelowError) for f in nemo.filters):
        nemo.addFilter(_BelowError())


class _BelowError(logging.Filter):
    """Drops records below ERROR unless the command runs with ``--verbose``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _state["verbose"] or record.levelno >= logging.ERROR


def shown(text, keep: str = "") -> str:
    """``text`` for the terminal: control and bidi characters spelled out (except ``keep``)."""
    from kani_adapt.core.untrusted import visible

    return visible(text, keep)


def _shown_message(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` whose message (names, file names in it) is shown safely; one record
    is one line (a traceback the formatter adds keeps its own lines)."""
    record = copy.copy(record)
    record.msg, record.args = shown(record.getMessage(), keep="\t"), None
    return record


class _StderrHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` (which tests and notebooks replace), names shown
    safely (see ``shown``)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _spoken["at"] = time.monotonic()
            sys.stderr.write(self.format(_shown_message(record)) + "\n")
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def verbose() -> bool:
    return _state["verbose"]


def quiet_loaded_libraries() -> None:
    """Libraries that reset their own level when imported (NeMo) are quieted again here; the
    module that imports them calls this right after the import."""
    if _state["verbose"]:
        return
    nemo = sys.modules.get("nemo.utils")
    if nemo is not None and hasattr(nemo, "logging"):
        nemo.logging.setLevel(logging.ERROR)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)


def progress(items: Iterable[T], desc: str, unit: str = "item", total: int | None = None,
             every: float = 30.0, size: Callable[[T], int] | None = None) -> Iterator[T]:
    """Iterate ``items`` showing progress: a bar on a terminal, else one log line every
    ``every`` seconds and one at the end. ``size(item)`` counts units per item (batches)."""
    items = list(items) if size is not None or total is None else items
    measure = size or (lambda _: 1)
    if total is None:
        total = sum(measure(i) for i in items)  # type: ignore[union-attr]
    if not total:
        yield from items
        return
    if sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=total, desc=desc, unit=unit, leave=False) as bar:
            for item in items:
                yield item
                bar.update(measure(item))
                _spoken["at"] = time.monotonic()  # the bar moved: not silent
        return
    log = logging.getLogger("kani_adapt.progress")
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += measure(item)
        now = time.monotonic()
        if now - last >= every or done >= total:
            last = now
            log.info("%s: %s", desc, _status(done, total, now - start, unit))


def doing(what: str) -> None:
    """What the command is doing now, for the lines of :func:`working`."""
    _spoken["doing"] = what


@contextmanager
def working(what: str, every: float | None = None):
    """While the block runs, say ``<what>: still <doing> (<time> so far)`` whenever ``every``
    seconds (``HEARTBEAT``) passed without a line of ours. Only the first process of a
    distributed run speaks."""
    if os.environ.get("RANK", "0") != "0" or os.environ.get("LOCAL_RANK", "0") != "0":
        yield
        return
    every = HEARTBEAT if every is None else every
    log, began, stop = logging.getLogger("kani_adapt.progress"), time.monotonic(), threading.Event()
    _spoken["at"], before = began, _spoken["doing"]

    def beat() -> None:
        while not stop.wait(max(0.01, _spoken["at"] + every - time.monotonic())):
            if time.monotonic() - _spoken["at"] >= every:
                _spoken["at"] = time.monotonic()  # also without our handler (a library's caller)
                log.info("%s: still %s (%s so far)", what, _spoken["doing"] or "working",
                         hms(time.monotonic() - began))

    thread = threading.Thread(target=beat, name=f"heartbeat {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        _spoken["doing"] = before


def _status(done: int, total: int | None, elapsed: float, unit: str) -> str:
    rate = done / max(elapsed, 1e-9)
    if not total:
        return f"{done} {unit}s, {rate:.1f}/s"
    eta = (total - done) / max(rate, 1e-9)
    return f"{done}/{total} {unit}s ({100 * done / total:.0f} %), {rate:.1f}/s, ETA {hms(eta)}"


def hms(seconds: float) -> str:
    seconds = int(round(max(seconds, 0)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
