"""Readers for the archive formats some packages keep their audio in.

Each reader turns one archive's bytes into :class:`Member` objects named
``archive!inner/path``; malformed archives raise :class:`ArchiveError` (the caller counts and
skips them). None of them executes anything from the archive.

* ``.cat`` -- OpenTTD sounds: a table of (offset, size) pairs, then length-prefixed titles and WAVs.
* ``.res`` -- Seven Kingdoms resources: a uint16 count, then ``count + 1`` 13-byte records (a
  9-byte NUL-padded name and a uint32 offset; the last record's offset is the end of the data).
  Only entries that are RIFF WAVs are yielded.
* ``.sf2`` -- SoundFont 2: the 16-bit ``smpl`` chunk and the ``shdr`` sample headers; every mono
  or left sample becomes one WAV (right halves of stereo pairs and ROM samples are skipped).
"""
from __future__ import annotations

import io
import struct
from typing import Iterator

import numpy as np
import soundfile as sf

from ...errors import AudiosepError

INNER = "!"


class ArchiveError(AudiosepError, ValueError):
    """An archive whose layout does not match its format."""


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in " -_()#" else " " for c in name).strip()


def cat_entries(archive: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, WAV bytes) of an OpenTTD sound ``.cat``."""
    first = struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF
    for i in range(first // 8):
        offset, size = struct.unpack_from("<II", data, 8 * i)
        offset &= 0x7FFFFFFF
        name_len = data[offset]
        title = data[offset + 1: offset + 1 + name_len].split(b"\0")[0].decode("utf-8", "replace")
        wav = data[offset + 1 + name_len: offset + size]
        # the title is "Name". Original ... -- keep only the quoted name for labelling
        name = title.split('"')[1] if title.count('"') >= 2 else title
        yield f"{archive}{INNER}{i:03d} {_safe(name)}.wav", wav


def res_entries(archive: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, WAV bytes) of the RIFF WAV entries of a Seven Kingdoms ``.res`` archive.

    Raises
    ------
    ArchiveError
        If the record table or an entry runs past the data (a truncated file), or the offsets
        are not increasing.
    """
    if len(data) < 2:
        raise ArchiveError(f"{archive}: too short for a .res archive")
    count = struct.unpack_from("<H", data, 0)[0]
    table_end = 2 + 13 * count
    if table_end + 13 > len(data):
        raise ArchiveError(f"{archive}: {count} records and the end record do not fit in {len(data)} bytes")
    names, offsets = [], []
    for i in range(count):
        rec = 2 + 13 * i
        names.append(data[rec: rec + 9].split(b"\0")[0].decode("ascii", "replace"))
        offsets.append(struct.unpack_from("<I", data, rec + 9)[0])
    # the record after the last entry holds the end offset of the data
    end = struct.unpack_from("<I", data, table_end + 9)[0]
    if end > len(data):
        raise ArchiveError(f"{archive}: the data ends at byte {end} but the file has {len(data)}; is it truncated?")
    offsets.append(end)
    for i, name in enumerate(names):
        start, stop = offsets[i], offsets[i + 1]
        if not table_end <= start < stop <= len(data):
            raise ArchiveError(f"{archive}: entry {name!r} has offsets {start}..{stop} outside the data")
        if data[start: start + 4] == b"RIFF":
            yield f"{archive}{INNER}{_safe(name)}.wav", data[start: stop]


def _chunks(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(id, data start, data size) of the RIFF sub-chunks in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        cid, size = data[pos: pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if pos + 8 + size > end:
            raise ArchiveError(f"chunk {cid!r} at byte {pos} runs past its parent")
        yield cid, pos + 8, size
        pos += 8 + size + (size & 1)


def sf2_entries(archive: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, 16-bit WAV bytes) of every mono or left sample of a SoundFont 2 file.

    Raises
    ------
    ArchiveError
        If the file is not a RIFF ``sfbk`` or lacks its ``smpl``/``shdr`` chunks.
    """
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise ArchiveError(f"{archive}: not a SoundFont 2 file (no RIFF sfbk header)")
    smpl = shdr = None
    for cid, pos, size in _chunks(data, 12, min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])):
        if cid == b"LIST":
            for sub, spos, ssize in _chunks(data, pos + 4, pos + size):
                if sub == b"smpl":
                    smpl = np.frombuffer(data, dtype="<i2", count=ssize // 2, offset=spos)
                elif sub == b"shdr":
                    shdr = data[spos: spos + ssize]
    if smpl is None or shdr is None:
        raise ArchiveError(f"{archive}: no smpl or shdr chunk")
    for i in range(len(shdr) // 46 - 1):  # the last header is the terminal "EOS" record
        rec = shdr[46 * i: 46 * (i + 1)]
        name = rec[:20].split(b"\0")[0].decode("ascii", "replace")
        start, end, _, _, rate, _, _, _, kind = struct.unpack("<IIIIIBbHH", rec[20:])
        if kind & 0x8000 or kind & 2 or not 0 <= start < end <= len(smpl) or rate <= 0:
            continue  # ROM sample, right half of a stereo pair, or broken bounds
        buf = io.BytesIO()
        sf.write(buf, smpl[start:end], rate, format="WAV", subtype="PCM_16")
        yield f"{archive}{INNER}{i:03d} {_safe(name)}.wav", buf.getvalue()
