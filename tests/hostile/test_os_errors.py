"""The operating system's refusals end in one line (exit 2) naming the reason and the path.

Full and read-only disks are real tmpfs mounts where the test may mount them (root in a
container) and injected errors otherwise; both kinds run where they can.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from data_tools.cli import main as data_tools_main
from tests.helpers import REQUIRED
from kani_adapt.core import atomic
from kani_adapt.cli.main import main
from tests.hostile.refusals import assert_refused, files_under


def _mount(folder, options: str):
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True)
    if done.returncode:
        pytest.skip("cannot mount a tmpfs here; the injected-error tests cover this path")
    return folder


@pytest.fixture
def full_disk(tmp_path):
    yield _mount(tmp_path / "small", "size=64k")
    subprocess.run(["umount", str(tmp_path / "small")], check=False)


@pytest.fixture
def read_only_disk(tmp_path):
    yield _mount(tmp_path / "ro", "ro,size=64k")
    subprocess.run(["umount", str(tmp_path / "ro")], check=False)


def _speech_folder(root):
    """Two 5-second clips with transcripts, folder layout."""
    for i in range(2):
        t = np.arange(5 * 22050) / 22050
        sf.write(root / "anna" / f"c{i}.wav" if (root / "anna").mkdir(parents=True, exist_ok=True)
                 is None else None, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050)
        (root / "anna" / f"c{i}.txt").write_text("hallo welt")
    return root


def _data_config(tmp_path, work, inputs):
    path = tmp_path / "data.yaml"
    path.write_text(f"work: {work}\ningest:\n  sources:\n    - path: {inputs}\n      tag: de\n")
    return path


def _no_temporaries(folder):
    return [p for p in files_under(folder) if atomic.MARK in p.name]


# -- a full disk ------------------------------------------------------------------------------

def test_full_disk_while_writing_a_model_is_named_with_its_path(full_disk, capsys):
    out = full_disk / "model"
    assert_refused(main, ["init", "--size", "tiny", "--out", str(out)], capsys,
                   f"no space left on device: {out}")
    assert list(full_disk.iterdir()) == []  # the temporary folder went with the error


def test_full_disk_under_libsndfile_is_named_not_system_error(full_disk, tmp_path, capsys):
    inputs = _speech_folder(tmp_path / "in")
    before = {p: p.read_bytes() for p in files_under(inputs) if p.is_file()}
    config = _data_config(tmp_path, full_disk / "work", inputs)
    line = assert_refused(data_tools_main, ["ingest", str(config)], capsys,
                          "no space left on device: ", str(full_disk / "work"))
    assert "System error" not in line
    assert _no_temporaries(full_disk) == []
    assert {p: p.read_bytes() for p in files_under(inputs) if p.is_file()} == before


def test_injected_libsndfile_system_error_on_a_full_disk_becomes_enospc(tmp_path, monkeypatch, capsys):
    inputs = _speech_folder(tmp_path / "in")
    config = _data_config(tmp_path, tmp_path / "work", inputs)

    def failing_write(file, *args, **kwargs):
        open(file, "wb").close()
        raise sf.LibsndfileError(2)  # what soundfile raises when the disk fills ("System error.")

    class Full:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(sf, "write", failing_write)
    monkeypatch.setattr(atomic.os, "statvfs", lambda path: Full())
    assert_refused(data_tools_main, ["ingest", str(config)], capsys,
                   "no space left on device: ", str(tmp_path / "work" / "ingest" / "audio"))
    assert _no_temporaries(tmp_path / "work") == []


def test_injected_enospc_from_safetensors_is_named_with_its_path(tmp_path, monkeypatch, capsys):
    from kani_adapt.models.generator import checkpoint

    def full(*args, **kwargs):
        raise Exception("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(checkpoint, "save_file", full)
    out = tmp_path / "model"
    assert_refused(main, ["init", "--size", "tiny", "--out", str(out)], capsys,
                   f"no space left on device: {out}")
    assert list(tmp_path.iterdir()) == []


# -- read-only folders, permission denied --------------------------------------------------

def test_read_only_disk_for_a_model_is_one_line(read_only_disk, capsys):
    out = read_only_disk / "model"
    assert_refused(main, ["init", "--size", "tiny", "--out", str(out)], capsys,
                   "read-only file system: ", str(read_only_disk))


def test_read_only_disk_for_a_run_folder_is_one_line(read_only_disk, capsys, synth_data):
    assert_refused(main, ["train", f"run_dir={read_only_disk / 'run'}", "trainer.device=cpu", *REQUIRED,
                          f"data.train={synth_data}"],
                   capsys, "read-only file system: ", str(read_only_disk / "run"))


@pytest.mark.parametrize("code,words", [(errno.EROFS, "read-only file system"),
                                        (errno.EACCES, "permission denied"),
                                        (errno.EDQUOT, "disk quota exceeded")])
def test_injected_refusal_of_a_folder_is_one_line(code, words, tmp_path, monkeypatch, capsys):
    def refuse(prefix="", dir=None, **kwargs):
        raise OSError(code, os.strerror(code), dir)

    monkeypatch.setattr(atomic.tempfile, "mkdtemp", refuse)
    assert_refused(main, ["init", "--size", "tiny", "--out", str(tmp_path / "model")], capsys,
                   f"{words}: {tmp_path}")


# -- symlink loops and missing files -------------------------------------------------------

def test_symlink_loop_as_a_config_is_one_line(tmp_path, capsys):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    assert_refused(main, ["train", str(loop)], capsys, str(loop), "symlink loop")


def test_symlink_loop_as_an_input_file_is_one_line(tiny_generator, tmp_path, capsys):
    loop = tmp_path / "emb.npy"
    loop.symlink_to(loop)
    assert_refused(main, ["generate", str(tiny_generator), "--text", "hallo", "--tag", "de",
                          "--speaker-emb", str(loop), "--out", str(tmp_path / "c.npy")], capsys,
                   str(loop), "symbolic links")


def test_missing_input_file_is_one_line(tiny_generator, tmp_path, capsys):
    missing = tmp_path / "nope.npy"
    assert_refused(main, ["generate", str(tiny_generator), "--text", "hallo", "--tag", "de",
                          "--speaker-emb", str(missing), "--out", str(tmp_path / "c.npy")], capsys,
                   str(missing), "No such file")


@pytest.mark.parametrize("code,words", [(errno.ENOSPC, "no space left on device"),
                                        (errno.EROFS, "read-only file system"),
                                        (errno.EACCES, "permission denied"),
                                        (errno.ELOOP, "symlink loop"),
                                        (errno.ENOENT, "file not found"),
                                        (errno.EXDEV, "invalid cross-device link")])
def test_every_os_error_reaching_the_cli_is_one_line(code, words, tmp_path, capsys):
    from kani_adapt.core.cli_kit import run_guarded

    def command(args):
        raise OSError(code, os.strerror(code), str(tmp_path / "x"))

    class Args:
        verbose = False

    assert run_guarded(command, Args()) == 2
    err = capsys.readouterr().err
    assert err == f"error: {words}: {tmp_path / 'x'}\n"


# -- --verbose ------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_adds_the_traceback_before_or_after_the_command(where, tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    missing.symlink_to(missing)
    argv = ["train", str(missing)]
    argv = ["--verbose", *argv] if where == "before" else [*argv, "--verbose"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")


def test_data_tools_takes_verbose_too(tmp_path, capsys):
    config = tmp_path / "d.yaml"
    config.write_text("work: a\nwork: b\n")
    assert data_tools_main(["--verbose", "check", str(config)]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert "--verbose" in subprocess.run([sys.executable, "-m", "data_tools.cli", "--help"],
                                         capture_output=True, text=True).stdout


# -- temporaries ------------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_failed_write_leaves_no_temporary_behind(tmp_path):
    def boom(tmp):
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as err:
        atomic.write_file(tmp_path / "dataset.parquet", boom)
    assert err.value.filename == str(tmp_path / "dataset.parquet")
    with pytest.raises(OSError):
        atomic.write_folder(tmp_path / "export", lambda tmp: boom(tmp / "x"))
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_a_killed_run_are_removed_on_the_next_run(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    stale_file = tmp_path / f".dataset.parquet.{dead}{atomic.MARK}x1"
    stale_folder = tmp_path / f".export.{dead}{atomic.MARK}x2"
    live_file = tmp_path / f".other.{alive}{atomic.MARK}x3"
    stale_file.write_bytes(b"half")
    (stale_folder / "sub").mkdir(parents=True)
    live_file.write_bytes(b"in progress")
    atomic.write_text(tmp_path / "metrics.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live_file.name, "metrics.json"])
