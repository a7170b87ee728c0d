"""Every file and folder the tools write goes through kani_adapt.core.atomic (write beside, then
rename), so an interrupted run never leaves a half-written file where a finished one belongs.
Read from the source: a new direct write fails here and must either use atomic or be listed
below with the reason it is safe."""
from __future__ import annotations

import ast

import pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRITERS = {"write_text", "write_bytes", "save_to_disk", "to_parquet", "to_csv", "save_pretrained",
           "save_file", "savefig"}
# (file, function): why its direct writes are safe
SAFE = {
    ("kani_adapt/models/generator/checkpoint.py", "_write_config"): "into save_checkpoint's temporary folder",
    ("kani_adapt/models/generator/checkpoint.py", "_write_generation_config"): "same",
    ("kani_adapt/training/export.py", "_write_adapter"): "a write_folder callback",
    ("kani_adapt/training/lora.py", "save_adapter"): "called by _write_adapter",
    ("kani_adapt/dataset.py", "write_tables"): "into a temporary folder its callers move into place",
    ("data_tools/contribute/package.py", "_write_shard"): "into write()'s temporary folder",
    ("kani_adapt/pages/plots.py", "render"): "into a memory buffer",
    ("kani_adapt/listen/playback.py", "wav"): "into a memory buffer: a stimulus served, never saved",
    ("kani_adapt/trainer/resume.py", "save_checkpoint"): "into a memory buffer, then atomic.write_bytes",
    ("data_tools/records.py", "append"): "an append-only stage log, fsynced; a torn last line is repaired",
    ("data_tools/speech/mfa.py", "run_commands"): "an append-only log of MFA's output",
    ("kani_adapt/core/built.py", "cached"): "an empty lock file, held with flock while one process builds",
    ("kani_adapt/models/speaker/network.py", "write_files"): "into a write_folder temporary folder (save, the tiny build)",
}


def direct_writes(path: Path) -> list[tuple[int, str, str]]:
    """(line, enclosing function, call) of each write that does not go through atomic. Calls
    inside a lambda or a function named ``write`` are callbacks handed to atomic."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    from_atomic = {alias.asname or alias.name for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and node.module == "kani_adapt.core.atomic"
                   for alias in node.names}
    found = []

    def visit(node, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                else "<lambda>" if isinstance(child, ast.Lambda) else func
            if isinstance(child, ast.Call) and inner not in ("<lambda>", "write"):
                call = _writer(child, from_atomic)
                if call:
                    found.append((child.lineno, inner, call))
            visit(child, inner)

    visit(tree, "<module>")
    return found


def _writer(call: ast.Call, from_atomic: set[str]) -> str | None:
    fn = call.func
    if isinstance(fn, ast.Name):
        if fn.id == "open":
            given = list(call.args[1:2]) + [k.value for k in call.keywords if k.arg == "mode"]
            modes = [m.value for m in given if isinstance(m, ast.Constant)]
            return "open" if any(set(str(m)) & set("wax") for m in modes) else None
        return fn.id if fn.id in WRITERS and fn.id not in from_atomic else None
    if isinstance(fn, ast.Attribute):
        owner = fn.value.id if isinstance(fn.value, ast.Name) else ""
        if owner == "atomic":
            return None
        if fn.attr in WRITERS or (fn.attr == "save" and owner in ("torch", "np")) or \
                (fn.attr == "write" and owner == "sf"):
            return f"{owner + '.' if owner else ''}{fn.attr}"
    return None


def test_every_write_goes_through_atomic_or_is_listed_with_its_reason():
    offenders, used = [], set()
    for root in ("kani_adapt", "data_tools"):
        for path in sorted((ROOT / root).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "kani_adapt/core/atomic.py":
                continue
            for line, func, call in direct_writes(path):
                if (rel, func) in SAFE:
                    used.add((rel, func))
                else:
                    offenders.append(f"{rel}:{line} {func}(): {call}")
    assert not offenders, "write through kani_adapt.core.atomic instead: " + "; ".join(offenders)
    assert used == set(SAFE), f"listed but no longer writing directly: {set(SAFE) - used}"


def test_the_scan_finds_direct_writes_and_lets_atomic_ones_pass(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "from kani_adapt.core.atomic import write_text, write_file\n"
        "from kani_adapt import atomic\n"
        "def good(p, df):\n"
        "    write_text(p, 'x'); atomic.write_json(p, {})\n"
        "    write_file(p, lambda tmp: df.to_parquet(tmp))\n"
        "def bad(p, df, arr):\n"
        "    p.write_text('x'); df.to_parquet(p); np.save(p, arr)\n"
        "    with open(p, 'w') as f: pass\n"
        "    with open(p) as f: pass\n")
    assert [(func, call) for _, func, call in direct_writes(src)] == [
        ("bad", "p.write_text"), ("bad", "df.to_parquet"), ("bad", "np.save"), ("bad", "open")]


@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                      (0o002, 0o664, 0o775)])
def test_written_files_and_folders_follow_the_umask(tmp_path, mask, file_mode, dir_mode):
    import os
    import stat

    from kani_adapt.core import atomic

    old = os.umask(mask)
    try:
        assert atomic.umask() == mask
        atomic.write_text(tmp_path / "a.txt", "x")
        atomic.write_npy(tmp_path / "a.npy", __import__("numpy").zeros(3))

        def fill(folder: Path) -> None:
            atomic.write_text(folder / "inner.json", "{}")
            (folder / "plain.txt").write_text("y")  # a library's own write inside the folder

        atomic.write_folder(tmp_path / "out", fill)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*")}
    assert modes == {"a.txt": file_mode, "a.npy": file_mode, "out": dir_mode,
                     "inner.json": file_mode, "plain.txt": file_mode}
