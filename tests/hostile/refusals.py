"""The hostile-input suite's helpers: planted payloads and the one-line-refusal check."""
from __future__ import annotations

import os
from pathlib import Path

import torch


class Payload:
    """Unpickling this runs ``touch MARKER``: the file appears only if code was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant_payload(path: Path, marker: Path) -> Path:
    """A torch checkpoint file whose pickle runs a command when loaded without weights_only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "global_step": 99, "payload": Payload(marker)}, path)
    return path


def assert_refused(main, argv: list[str], capsys, *fragments: str) -> str:
    """The command exits 2 with one line on stderr, no traceback, naming every fragment."""
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert len(lines) == 1, err[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def files_under(folder: Path) -> set[Path]:
    return {p for p in Path(folder).rglob("*")}
