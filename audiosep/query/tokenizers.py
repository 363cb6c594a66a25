"""Loading the text encoders' tokenizers, refusing unusable ones, and CLIP's text cleaning.

transformers 5.x can hand back a stub tokenizer without raising when the files of a hub id are
not cached (RoBERTa: 5 special tokens; CLIP: 2): every caption then maps to the same ids and
every query gets the same embedding. :func:`load_tokenizer` checks the vocabulary size against
the model's and round-trips a caption before any tokenizer is used.
"""
from __future__ import annotations

import contextlib
import html
import os
import re
from pathlib import Path
from typing import Any, Iterator

import ftfy
from transformers.utils import logging as hf_logging

from ..errors import AudiosepError

# Two captions that any real vocabulary tokenizes differently and decodes back unchanged.
PROBES = ("a dog barking", "rain on a tin roof")
_WHITESPACE = re.compile(r"\s+")


class TokenizerError(AudiosepError, OSError):
    """A tokenizer that cannot be loaded, or loads as a stub that would make every query alike."""


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-load progress bars (loading a small encoder is not long work)."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _where(source: str) -> str:
    return f"folder {source}" if Path(source).is_dir() else f"{source!r} (not a folder: a hub id, read from the Hugging Face cache)"


def check_tokenizer(tokenizer: Any, source: str, vocab_size: int, files: str) -> None:
    """Raise :class:`TokenizerError` unless ``tokenizer`` is a real vocabulary for a model of
    ``vocab_size`` token embeddings: not larger than the model's, not a stub, and the two
    :data:`PROBES` tokenize differently and decode back."""
    size = len(tokenizer)
    fix = f"put the tokenizer files ({files}) in a folder and pass that folder as tokenizer="
    if size > vocab_size:
        raise TokenizerError(
            f"the tokenizer {_where(source)} has {size} tokens but the model only {vocab_size}; "
            f"pass the tokenizer that belongs to the model: {fix}"
        )
    ids = [list(tokenizer(p)["input_ids"]) for p in PROBES]
    decoded = _WHITESPACE.sub(" ", tokenizer.decode(ids[0], skip_special_tokens=True)).strip().lower()
    if size < vocab_size // 2 or ids[0] == ids[1] or decoded != PROBES[0]:
        raise TokenizerError(
            f"the tokenizer {_where(source)} is a stub ({size} tokens for a model of {vocab_size}; "
            f"{PROBES[0]!r} reads back as {decoded!r}), so every query would get the same embedding; "
            f"transformers returns such a stub when the files are missing: {fix}"
        )


def load_tokenizer(cls: Any, source: str | os.PathLike, vocab_size: int, files: str) -> Any:
    """``cls.from_pretrained(source)``, checked with :func:`check_tokenizer`.

    Parameters
    ----------
    cls : a transformers tokenizer class (``RobertaTokenizer``, ``CLIPTokenizer``, ``AutoTokenizer``)
    source : folder or hub id
    vocab_size : int
        Token embeddings of the model the tokenizer feeds.
    files : str
        The files a folder must hold, for the error message (e.g. ``"vocab.json + merges.txt"``).
    """
    source = str(source)
    try:
        with quiet_transformers():
            tokenizer = cls.from_pretrained(source, local_files_only=Path(source).is_dir())
    except (OSError, ValueError) as err:
        raise TokenizerError(
            f"could not load the tokenizer {_where(source)} ({type(err).__name__}: {err}); "
            f"put the tokenizer files ({files}) in a folder and pass that folder as tokenizer="
        ) from err
    check_tokenizer(tokenizer, source, vocab_size, files)
    return tokenizer


def clean_clip_text(text: str) -> str:
    """The text cleaning open_clip applies before CLIP's BPE (transformers' CLIPTokenizer does
    not): mojibake and quotes fixed by ``ftfy.fix_text``, HTML entities unescaped twice, runs of
    whitespace folded to one space, ends stripped, lower case.

    >>> clean_clip_text("  Dog\u2019s   &amp;amp; \u201cWOOF\u201d ")
    'dog\\'s & "woof"'
    """
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


__all__ = ["PROBES", "TokenizerError", "check_tokenizer", "clean_clip_text", "load_tokenizer", "quiet_transformers"]
