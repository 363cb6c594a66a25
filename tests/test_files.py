"""Atomic writes (whole or not at all, the umask's mode, stale temporary files cleaned) and the
checks on an output path made before any work."""
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import audiosep
from audiosep.errors import UsageError
from audiosep.files import atomic_path, check_writable, name_max, removed_on_error, shorten_name


def test_written_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644


def test_a_writer_that_makes_the_file_anew_still_gets_the_umask_mode(tmp_path):
    """safetensors' save_file replaces the temporary file with a 0600 one of its own."""
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.bin") as tmp:
            tmp.unlink()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o644


def test_failure_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        with atomic_path(target, overwrite=False):
            pass


def test_a_writer_killed_mid_write_leaves_a_part_file_the_next_write_removes(tmp_path):
    """SIGKILL skips every cleanup: its ``.part`` stays until the next write to that target."""
    target = tmp_path / "out.wav"
    code = (
        "import os, signal, sys\n"
        "from audiosep.files import atomic_path\n"
        f"with atomic_path({str(target)!r}) as tmp:\n"
        "    tmp.write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(audiosep.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    stale = [p.name for p in tmp_path.iterdir()]
    assert len(stale) == 1 and stale[0].startswith(".out.wav.") and stale[0].endswith(".part")
    # files that are not our temporary files for this target are never touched
    keep = [".out.wav.notes", ".other.wav.999999999.abcdefgh.part", f".out.wav.{os.getpid()}.abcdefgh.part", "out.wav.part"]
    for name in keep:
        (tmp_path / name).write_text("keep")
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep + ["out.wav"])


def test_a_name_near_the_limit_still_gets_a_temporary_file(tmp_path):
    target = tmp_path / ("n" * (name_max(tmp_path) - 4) + ".wav")  # the longest name allowed
    with atomic_path(target) as tmp:
        assert len(os.fsencode(tmp.name)) <= name_max(tmp_path)
        tmp.write_text("x")
    assert target.read_text() == "x" and [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: "", "output path is empty"),
        (lambda p: p / "file.wav" / "out" / "x.wav", "file.wav is a file, not a folder"),
        (lambda p: p / ("x" * 300 + ".wav"), "is 304 bytes, longer than the 255 this file system allows"),
        (lambda p: p / "new" / ("d" * 256) / "x.wav", "is 256 bytes, longer than the 255"),
        (lambda p: p, "it is a folder"),
    ],
)
def test_check_writable_refuses_with_one_line(tmp_path, make, message):
    (tmp_path / "file.wav").write_text("audio")
    with pytest.raises(UsageError, match=message):
        check_writable(make(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.wav"]  # nothing created


def test_check_writable_refuses_a_folder_without_write_permission(tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != tmp_path and real_access(p, mode))
    with pytest.raises(UsageError, match=f"no permission to write in {tmp_path}; choose another output folder"):
        check_writable(tmp_path / "sub" / "x.wav")
    assert check_writable(tmp_path.parent / "y.wav") == tmp_path.parent / "y.wav"


def test_removed_on_error_removes_only_what_the_block_created(tmp_path):
    old = tmp_path / "old.wav"
    old.write_text("old")
    new = tmp_path / "deep" / "er" / "new.wav"
    with pytest.raises(KeyboardInterrupt):
        with removed_on_error([old, new]):
            old.write_text("replaced")
            new.parent.mkdir(parents=True)
            new.write_text("new")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.wav"] and old.read_text() == "replaced"


def test_shorten_name_is_deterministic_and_keeps_names_distinct():
    a, b = shorten_name("é" * 200 + "a", 100), shorten_name("é" * 200 + "b", 100)
    assert a == shorten_name("é" * 200 + "a", 100) and a != b
    assert len(a.encode()) <= 100 and a.startswith("é" * 45)
    assert shorten_name("short", 100) == "short"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_check_writable_tries_the_folder_where_access_cannot_tell():
    """/proc refuses new files even to root, for whom os.access says yes."""
    with pytest.raises(UsageError, match="cannot write /proc/x.wav: (no permission to write in /proc|creating a "
                                         "file in /proc fails)"):
        check_writable("/proc/x.wav")
