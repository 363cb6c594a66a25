"""The error family: one-line messages, and the one unknown-key check every config uses."""
from __future__ import annotations

import pytest

from audiosep.errors import AudiosepError, UsageError, check_keys


def test_check_keys_names_the_dotted_key_a_close_match_and_the_known_keys():
    check_keys({"lr": 1}, ["lr", "eps"], "optim")  # nothing unknown: no error
    with pytest.raises(UsageError, match=r"^unknown key optim\.lrr \(did you mean 'lr'\?\); known keys of optim: eps, lr$"):
        check_keys({"lrr": 1}, ["lr", "eps"], "optim")
    with pytest.raises(KeyError, match=r"unknown keys a, b; known keys at the top level: data"):
        check_keys(["b", "a"], ["data"], error=KeyError)
    with pytest.raises(UsageError, match=r"unknown key 1; known keys at the top level: x"):
        check_keys({1: 2}, ["x"])  # YAML may give keys that are not strings


def test_one_line_of_an_error_re_raised_by_a_dataloader_worker():
    class Boom(AudiosepError):
        pass

    text = ("Caught Boom in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
            '  File "x.py", line 1, in f\n    raise Boom("the file a.wav is bad; fix it")\n'
            "tests.test_errors.Boom: the file a.wav is bad; fix it\n")
    assert Boom(text).one_line() == "the file a.wav is bad; fix it"
    assert Boom("two\nlines").one_line() == "two lines"
