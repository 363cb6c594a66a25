"""Output names (distinct, short enough for the file system, deterministic) and the checks
made on output paths before any work."""
from __future__ import annotations

import os

import pytest

from audiosep.errors import UsageError
from audiosep.files import name_max
from audiosep.outputs import check_outputs, output_paths, residual_path


def test_queries_with_the_same_slug_get_distinct_names(tmp_path):
    names = [p.name for p in output_paths(tmp_path, ["a dog!", "a dog?", "A DOG", "a dog-2", "!!!", "query"], "mix")]
    assert names == ["mix_a-dog.wav", "mix_a-dog-2.wav", "mix_a-dog-3.wav", "mix_a-dog-2-2.wav", "mix_query.wav",
                     "mix_query-2.wav"]
    check_outputs(output_paths(tmp_path, ["a dog!", "a dog?"], "mix"), ["a dog!", "a dog?"], True, False)


def test_names_too_long_for_the_file_system_are_shortened_with_a_hash(tmp_path):
    stem = "s" * 200
    queries = ["a very long description of a dog barking at " + w for w in ("night", "noon")]
    paths = output_paths(tmp_path, queries, stem)
    limit = name_max(tmp_path)
    for p in paths:
        assert len(os.fsencode(residual_path(p).name)) <= limit
        assert p.name.startswith(stem + "_a-very-long") and p.suffix == ".wav"
    assert paths[0] != paths[1]
    assert output_paths(tmp_path, queries, stem) == paths  # the same inputs give the same names
    check_outputs(paths, queries, True, False)  # and they can be written


def test_empty_output_path_is_an_error(tmp_path):
    with pytest.raises(UsageError, match="output path is empty"):
        output_paths("", ["a dog"], "mix")
    with pytest.raises(UsageError, match="output path is empty"):
        check_outputs(["", tmp_path / "b.wav"], ["a", "b"], False, False)


@pytest.mark.parametrize(
    "out,residual",
    [("mix.wav", False), ("sub/../mix.wav", False), ("hard-link.wav", False), ("mix", True)],
)
def test_output_equal_to_the_input_is_refused_even_with_overwrite(tmp_path, out, residual):
    mix = tmp_path / ("mix_residual.wav" if residual else "mix.wav")  # "mix" + residual names the input
    mix.write_bytes(b"input")
    os.link(mix, tmp_path / "hard-link.wav")
    out = tmp_path / (out + ".wav" if residual else out)
    with pytest.raises(UsageError, match=f"is the input file {mix}; .*not even with --force"):
        check_outputs(out, ["a dog"], residual, True, source=mix)
    assert mix.read_bytes() == b"input"


def test_outputs_that_are_the_same_file_collide(tmp_path):
    with pytest.raises(UsageError, match="a.wav and .*a.wav are the same file"):
        check_outputs([tmp_path / "a.wav", tmp_path / "x" / ".." / "a.wav"], ["p", "q"], False, False)
    with pytest.raises(UsageError, match="same file"):  # a target named like another's residual
        check_outputs([tmp_path / "a_residual.wav", tmp_path / "a.wav"], ["p", "q"], True, False)


def test_separate_refuses_to_write_over_its_input_before_loading_anything(tmp_path):
    from audiosep import separate
    from audiosep.audio.io import save_audio

    mix = save_audio(tmp_path / "mix.wav", [[0.1, -0.1] * 100], 16000)
    before = mix.read_bytes()
    with pytest.raises(UsageError, match="is the input file"):  # not "no such model": checked first
        separate(mix, "a dog", model="no-such-model", output=mix, overwrite=True)
    with pytest.raises(UsageError, match="output path is empty"):
        separate(mix, "a dog", model="no-such-model", output="")
    assert mix.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["mix.wav"]
