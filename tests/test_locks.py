"""A folder lock belongs to the process that took it, not to the children it forked."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from kani_adapt.core import locks

ROOT = Path(__file__).resolve().parents[1]
TRY = ("import sys; from kani_adapt.core import locks\n"
       "try:\n    with locks.hold_run(sys.argv[1], 'probe'):\n        print('taken')\n"
       "except Exception as e:\n    print('refused', e)\n")


def _try_from_another_process(folder: Path) -> str:
    done = subprocess.run([sys.executable, "-c", TRY, str(folder)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.stdout.strip()


def test_a_forked_child_that_outlives_the_holder_does_not_keep_the_folder_locked(tmp_path):
    """A killed run's data-loader workers linger a few seconds; resuming must not be refused."""
    read, write = os.pipe()
    with locks.hold_run(tmp_path, "train"):
        child = os.fork()
        if child == 0:  # a worker: lives on after its parent let go
            os.close(read)
            with locks.hold_run(tmp_path, "train"):  # re-entrant in the child: no second lock
                pass
            os.write(write, b"x")
            time.sleep(30)
            os._exit(0)
        os.close(write)
        assert os.read(read, 1) == b"x"
        assert _try_from_another_process(tmp_path).startswith("refused")  # held by this process
    try:
        assert _try_from_another_process(tmp_path) == "taken"  # the worker lives, holds nothing
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
