"""Progress of a stage: a tqdm bar on a terminal, one log line per interval otherwise (batch jobs,
CI and log files get readable lines, not carriage-return soup)."""
from __future__ import annotations

import logging
import sys
import time
from typing import Iterable, Iterator

log = logging.getLogger("data_tools")
INTERVAL_SECONDS = 30.0


def track(batches: list[list], desc: str, unit: str = "item",
          interval: float = INTERVAL_SECONDS) -> Iterator[list]:
    """Yield ``batches``, reporting how many items are done."""
    total = sum(len(b) for b in batches)
    if not total:
        return
    if sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=total, desc=desc, unit=unit) as bar:
            for batch in batches:
                yield batch
                bar.update(len(batch))
        return
    yield from _lines(batches, desc, unit, total, interval)


def _lines(batches: Iterable[list], desc: str, unit: str, total: int,
           interval: float) -> Iterator[list]:
    start = last = time.monotonic()
    done = 0
    for batch in batches:
        yield batch
        done += len(batch)
        now = time.monotonic()
        if now - last >= interval or done == total:
            rate = done / max(now - start, 1e-9)
            eta = (total - done) / rate if rate else 0.0
            log.info("%s: %d/%d %ss (%.0f%%), %.1f %ss/s, ETA %.0f s", desc, done, total, unit,
                     100 * done / total, rate, unit, eta)
            last = now
