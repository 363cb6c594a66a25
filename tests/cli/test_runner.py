"""The shared runner of the three command-line tools: one line, exit 2 or 130, no traceback."""
from __future__ import annotations

import pytest

from audiosep.bench.errors import BenchmarkError
from audiosep.cli.runner import run_command
from audiosep.errors import EXIT_INTERRUPTED, EXIT_USAGE, AudiosepError, UsageError
from audiosep.hub import PretrainedError
from audiosep.train.config import ConfigError
from audiosep.train.manifest import ManifestError


@pytest.mark.parametrize("cls", [BenchmarkError, PretrainedError, ConfigError, ManifestError, UsageError])
def test_every_error_family_is_an_audiosep_error(cls):
    assert issubclass(cls, AudiosepError)


def _raise(err):
    def action():
        raise err
    return action


def test_user_error_is_one_line_exit_2(capsys):
    code = run_command("prog", _raise(UsageError("bad value\n  use  a good one")))
    assert code == EXIT_USAGE
    assert capsys.readouterr().err == "prog: error: bad value use a good one\n"


def test_permission_error_names_the_file_and_the_fix(capsys, tmp_path):
    err = PermissionError(13, "Permission denied", str(tmp_path / "x.wav"))
    assert run_command("prog", _raise(err)) == EXIT_USAGE
    line = capsys.readouterr().err
    assert line.startswith("prog: error: Permission denied: ") and "x.wav" in line and "permissions" in line
    assert "convert" not in line


def test_ctrl_c_is_130_with_the_command_message(capsys):
    assert run_command("prog", _raise(KeyboardInterrupt()), interrupted="interrupted; rerun") == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "prog: interrupted; rerun\n"


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_command("prog", lambda: 1 / 0)


def test_return_value_is_the_exit_status():
    assert run_command("prog", lambda: None) == 0
    assert run_command("prog", lambda: 3) == 3


@pytest.mark.parametrize("device", ["meta", "gpu0"])
def test_bad_device_is_a_usage_error(device):
    from audiosep.devices import check_device

    with pytest.raises(UsageError, match="use 'cuda', 'mps' or 'cpu'"):
        check_device(device)


@pytest.mark.parametrize("prog,argv,message", [
    ("audiosep-bench", ["run", "custom", "--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
    ("audiosep-bench", ["frobnicate"], "invalid choice: 'frobnicate'"),
    ("audiosep-train", [], "the following arguments are required: config"),
])
def test_bench_and_train_argument_errors_are_one_line_like_audiosep(prog, argv, message, capsys):
    from audiosep.bench.cli import main as bench_main
    from audiosep.train.cli import main as train_main

    with pytest.raises(SystemExit) as exit_:
        (bench_main if prog == "audiosep-bench" else train_main)(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == EXIT_USAGE and err.count("\n") == 1
    # a sub-command's parser names it: "audiosep-bench run: error: ...; see 'audiosep-bench run --help'"
    assert err.startswith(prog) and ": error: " in err and message in err and f"see '{prog}" in err
