"""``audiosep separate-folder``: same outputs as ``audiosep separate`` per file, the manifest, resuming,
failures recorded, interruption, and two Gloo processes splitting the files."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from rank_jobs import finish, start_ranks

from audiosep.audio.io import load_audio, save_audio
from audiosep.batch import MANIFEST, list_inputs, plan_tasks
from audiosep.cli.main import main
from audiosep.model import AudioSep
from audiosep.nn import ResUNet, ResUNetConfig
from audiosep.query.hashed import HashedTextEncoder

QUERIES = ["A dog barking", "rain"]
INPUTS = ["a.wav", "d.wav", "sub/b.wav", "sub/c.flac"]  # sorted: rank of file i is i % 2


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)  # parameter init only
    cfg = ResUNetConfig(sample_rate=8000, n_fft=256, hop_length=64, stem_channels=4, encoder_channels=(4, 8, 8),
                        pool_sizes=((2, 2), (2, 2), (1, 2)), condition_dim=16)
    model = AudioSep(ResUNet(cfg).eval(), HashedTextEncoder(dim=16), name="tiny")
    return model.save_pretrained(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def folder(tmp_path):
    """IN/ with four short files: mono and stereo, two rates, WAV and FLAC, one in a sub-folder."""
    g = torch.Generator().manual_seed(1)
    root = tmp_path / "in"
    for rel, (channels, frames, sr) in zip(INPUTS, [(1, 3000, 8000), (2, 2000, 8000), (1, 2500, 11025),
                                                    (2, 3000, 8000)]):
        save_audio(root / rel, 0.1 * torch.randn(channels, frames, generator=g), sr)
    (root / "notes.txt").write_text("not audio: ignored")
    return root


def cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]


def without_timing(records):
    return [{k: v for k, v in r.items() if k not in ("rank", "seconds")} for r in records]


def output_names(rel: str, residual: bool = True) -> list[str]:
    stem = rel.rsplit(".", 1)[0]
    names = [f"{stem}_a-dog-barking.wav", f"{stem}_rain.wav"]
    return names + ([f"{stem}_a-dog-barking_residual.wav", f"{stem}_rain_residual.wav"] if residual else [])


def test_one_process_matches_separate_per_file_and_rerun_skips(model_dir, folder, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = cli(["separate-folder", folder, out, *QUERIES, "--model", model_dir, "--residual"], capsys)
    assert code == 0, err
    assert stdout == f"4 done, 0 skipped, 0 failed (see {out / MANIFEST})\n"
    records = manifest(out)
    assert [r["input"] for r in records] == INPUTS
    assert all(r["status"] == "done" and r["error"] is None and r["rank"] == 0 for r in records)
    assert [r["outputs"] for r in records] == [output_names(rel) for rel in INPUTS]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav"))
    assert written == sorted(n for rel in INPUTS for n in output_names(rel))
    # every file as `audiosep separate` gives it
    for rel in INPUTS:
        ref = tmp_path / "ref" / rel
        assert cli(["separate", folder / rel, *QUERIES, "-o", f"{ref}/", "--model", model_dir, "--residual"],
                   capsys)[0] == 0
        for name in output_names(rel):
            got, sr = load_audio(out / name)
            want, want_sr = load_audio(ref / Path(name).name)
            assert sr == want_sr == soundfile.info(str(folder / rel)).samplerate
            torch.testing.assert_close(got, want, atol=1e-6, rtol=0)

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    code, stdout, _ = cli(["separate-folder", folder, out, *QUERIES, "--model", model_dir, "--residual"], capsys)
    assert code == 0 and stdout.startswith("0 done, 4 skipped, 0 failed")
    again = manifest(out)
    assert [r["status"] for r in again] == ["skipped"] * 4  # every file once, this run's record
    assert [r["outputs"] for r in again] == [r["outputs"] for r in records]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == stamps  # nothing rewritten

    (out / "sub" / "b_rain_residual.wav").unlink()  # one output lost: only that file is redone
    code, stdout, _ = cli(["separate-folder", folder, out, *QUERIES, "--model", model_dir, "--residual"], capsys)
    assert code == 0 and stdout.startswith("1 done, 3 skipped, 0 failed")
    assert [r["status"] for r in manifest(out)] == ["skipped", "skipped", "done", "skipped"]
    assert (out / "sub" / "b_rain_residual.wav").is_file()
    assert (out / "a_rain.wav").stat().st_mtime_ns == stamps[out / "a_rain.wav"]

    code, stdout, _ = cli(["separate-folder", folder, out, *QUERIES, "--model", model_dir, "--residual",
                           "--overwrite"], capsys)
    assert code == 0 and stdout.startswith("4 done, 0 skipped, 0 failed")


def test_bad_files_are_recorded_failed_and_the_others_done(model_dir, folder, tmp_path, capsys):
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00not audio at all")
    soundfile.write(str(folder / "nan.wav"), np.full(800, np.nan, np.float32), 8000, subtype="FLOAT")
    soundfile.write(str(folder / "empty.wav"), np.zeros(0, np.float32), 8000, subtype="FLOAT")
    out = tmp_path / "out"
    code, stdout, err = cli(["separate-folder", folder, out, "rain", "--model", model_dir], capsys)
    assert code == 1, err
    assert stdout == f"4 done, 0 skipped, 3 failed (see {out / MANIFEST})\n"
    by_input = {r["input"]: r for r in manifest(out)}
    assert sorted(by_input) == sorted(INPUTS + ["broken.wav", "nan.wav", "empty.wav"])
    for name, words in (("broken.wav", "cannot read"), ("nan.wav", "NaN"), ("empty.wav", "no samples")):
        rec = by_input[name]
        assert rec["status"] == "failed" and rec["outputs"] == [] and words in rec["error"], rec
        assert "\n" not in rec["error"]
    assert all(by_input[rel]["status"] == "done" for rel in INPUTS)
    assert not list(out.glob("broken*")) and not list(out.glob("nan*"))
    # a rerun tries the failed files again and skips the rest
    code, stdout, _ = cli(["separate-folder", folder, out, "rain", "--model", model_dir], capsys)
    assert code == 1 and stdout.startswith("0 done, 4 skipped, 3 failed")
    assert len(manifest(out)) == 7


def test_files_from_list_and_same_stem_names(model_dir, folder, tmp_path, capsys):
    save_audio(folder / "a.flac", 0.1 * torch.ones(1, 1000), 8000)  # same stem as a.wav
    listing = tmp_path / "list.txt"
    listing.write_text("# two files\na.wav\n\na.flac\n./a.wav\n")
    out = tmp_path / "out"
    code, stdout, _ = cli(["separate-folder", folder, out, "rain", "--model", model_dir, "--files-from", listing],
                          capsys)
    assert code == 0 and stdout.startswith("2 done, 0 skipped, 0 failed")
    assert sorted(p.name for p in out.glob("*.wav")) == ["a.flac_rain.wav", "a.wav_rain.wav"]
    assert [r["input"] for r in manifest(out)] == ["a.flac", "a.wav"]
    # a second list into the same folder: the manifest keeps the first list's files, each once
    listing.write_text("sub/b.wav\nmissing.wav\n")
    code, stdout, _ = cli(["separate-folder", folder, out, "rain", "--model", model_dir, "--files-from", listing],
                          capsys)
    assert code == 1 and stdout.startswith("1 done, 0 skipped, 1 failed")
    by_input = {r["input"]: r for r in manifest(out)}
    assert sorted(by_input) == ["a.flac", "a.wav", "missing.wav", "sub/b.wav"]
    assert by_input["missing.wav"]["error"].startswith("FileNotFoundError: audio file not found")


def test_output_inside_input_is_not_listed_as_input(model_dir, folder, capsys):
    out = folder / "separated"
    assert cli(["separate-folder", folder, out, "rain", "--model", model_dir], capsys)[0] == 0
    assert list_inputs(folder, out=out) == INPUTS
    code, stdout, _ = cli(["separate-folder", folder, out, "rain", "--model", model_dir], capsys)
    assert code == 0 and stdout.startswith("0 done, 4 skipped, 0 failed")


@pytest.mark.parametrize("case", ["empty", "missing", "same", "holds", "outside-list", "empty-query", "out-file"])
def test_usage_errors_are_one_line_before_any_work(case, model_dir, folder, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "list.txt").write_text("../elsewhere.wav\n")
    args = {
        "empty": [tmp_path / "empty", tmp_path / "out", "rain"],
        "missing": [tmp_path / "nope", tmp_path / "out", "rain"],
        "same": [folder, folder, "rain"],
        "holds": [folder, tmp_path, "rain"],
        "outside-list": [folder, tmp_path / "out", "rain", "--files-from", tmp_path / "list.txt"],
        "empty-query": [folder, tmp_path / "out", " "],
        "out-file": [folder, tmp_path / "file", "rain"],
    }[case]
    code, stdout, err = cli(["separate-folder", *args, "--model", model_dir], capsys)
    assert code == 2 and stdout == ""
    assert err.startswith("audiosep: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_run_keeps_finished_files_and_resumes(how, model_dir, folder, tmp_path, capsys, monkeypatch):
    import audiosep.separation

    real, calls = audiosep.separation.separate, []

    def stop_at_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(audiosep.separation, "separate", stop_at_third)
    out = tmp_path / "out"
    code, stdout, err = cli(["separate-folder", folder, out, "rain", "--model", model_dir], capsys)
    assert code == (143 if how == "sigterm" else 130) and stdout == ""
    assert err.count("\n") == 1 and "rerun the same command to resume" in err
    assert [r["input"] for r in manifest(out)] == INPUTS[:2]  # the finished files are recorded
    assert sorted(p.name for p in out.rglob("*")) == ["a_rain.wav", "d_rain.wav", MANIFEST]  # no partial file
    monkeypatch.setattr(audiosep.separation, "separate", real)
    code, stdout, _ = cli(["separate-folder", folder, out, "rain", "--model", model_dir], capsys)
    assert code == 0 and stdout.startswith("2 done, 2 skipped, 0 failed")


def test_plan_split_covers_every_file_once(tmp_path):
    from audiosep.ranks import shard

    rels = [f"f{i:02d}.wav" for i in range(7)]
    tasks = plan_tasks(tmp_path, rels, tmp_path / "out", ["rain"])
    parts = [shard(tasks, r, 3) for r in range(3)]
    assert [len(p) for p in parts] == [3, 2, 2]
    assert sorted(t.key for p in parts for t in p) == rels
    assert [t.key for t in parts[1]] == ["f01.wav", "f04.wav"]


def run_two_ranks(argv_of_rank, timeout=120):
    """Run ``python -m audiosep ARGV`` as ranks 0 and 1 of a Gloo job; -> [(returncode, stdout, stderr)]."""
    return finish(start_ranks(lambda rank: ["-m", "audiosep", *argv_of_rank(rank)]), timeout)


def test_ranks_that_list_different_files_stop_with_one_line(model_dir, folder, tmp_path):
    for rank, files in ((0, "a.wav\nd.wav\n"), (1, "a.wav\n")):
        (tmp_path / f"list{rank}.txt").write_text(files)
    out = tmp_path / "out"
    results = run_two_ranks(lambda rank: ["separate-folder", folder, out, "rain", "--model", model_dir, "--device",
                                          "cpu", "--files-from", tmp_path / f"list{rank}.txt"])
    for code, stdout, err in results:
        assert code == 2 and stdout == "" and err.count("\n") == 1, results
        assert err.startswith("audiosep: error: the processes listed different input files")
    assert not list(out.glob("*.wav")) and not (out / ".separate-folder.lock").exists()


def test_two_gloo_processes_split_the_files_and_merge_one_manifest(model_dir, folder, tmp_path, capsys):
    (folder / "broken.wav").write_bytes(b"not audio")
    single = tmp_path / "single"
    assert cli(["separate-folder", folder, single, *QUERIES, "--model", model_dir], capsys)[0] == 1
    out = tmp_path / "out"
    results = run_two_ranks(lambda rank: ["separate-folder", folder, out, *QUERIES, "--model", model_dir,
                                          "--device", "cpu"])
    assert [r[0] for r in results] == [1, 0], results  # the job's status comes from rank 0
    assert results[0][1] == f"4 done, 0 skipped, 1 failed (see {out / MANIFEST})\n"
    assert results[1][1:] == ("", "")  # other ranks are quiet
    records = manifest(out)
    inputs = sorted(INPUTS + ["broken.wav"])
    assert [r["input"] for r in records] == inputs
    assert [r["rank"] for r in records] == [i % 2 for i in range(len(inputs))]
    assert without_timing(records) == without_timing(manifest(single))
    assert not list(out.glob(".manifest.rank-*"))
    for rec in records:
        for name in rec["outputs"]:
            torch.testing.assert_close(load_audio(out / name)[0], load_audio(single / name)[0], atol=1e-5, rtol=0)


def test_a_second_job_into_the_same_folder_is_refused_while_the_first_runs(model_dir, folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".separate-folder.lock"
    lock.write_text(f"{socket.gethostname()} {os.getppid()}\n")  # a live process holds it
    code, stdout, err = cli(["separate-folder", folder, out, "rain", "--model", model_dir], capsys)
    assert code == 2 and stdout == "" and err.count("\n") == 1
    assert f"another separate-folder job (host and pid: {socket.gethostname()} {os.getppid()})" in err
    assert not (out / MANIFEST).exists()
    # the lock of a job that was killed outright (its process is gone) is taken over, and released at the end
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(f"{socket.gethostname()} {gone.stdout.strip()}\n")
    code, stdout, _ = cli(["separate-folder", folder, out, "rain", "--model", model_dir], capsys)
    assert code == 0 and stdout.startswith("4 done")
    assert not lock.exists()


def test_unwritable_output_is_refused_before_the_model_loads(model_dir, folder, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        code, _, err = cli(["separate-folder", folder, locked / "out", "rain", "--model", tmp_path / "no-model"],
                           capsys)
    finally:
        locked.chmod(0o700)
    assert code == 2 and "no permission to write" in err and err.count("\n") == 1
