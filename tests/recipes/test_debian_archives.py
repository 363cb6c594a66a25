"""Archive readers of the Debian sounds recipe (Seven Kingdoms .res, SoundFont 2 samples, zip-like
.pk3/.orgue) and WavPack decoding, on archives built here byte by byte."""
import io
import shutil
import struct
import subprocess
import zipfile

import numpy as np
import pytest
import soundfile as sf

from audiosep.recipes.debian_sounds.archives import ArchiveError, res_entries, sf2_entries
from audiosep.recipes.debian_sounds.clips import decode
from audiosep.recipes.debian_sounds.extract import DEFAULT_ARCHIVES, iter_members

SR = 11025


def _wav(freq, n=2000, sr=SR):
    x = (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def make_res(entries: list[tuple[str, bytes]]) -> bytes:
    """uint16 count, 13-byte records (9-byte name, uint32 offset), an end record, then the data."""
    table = 2 + 13 * (len(entries) + 1)
    offsets, pos = [], table
    for _, data in entries:
        offsets.append(pos)
        pos += len(data)
    out = bytearray(struct.pack("<H", len(entries)))
    for (name, _), off in zip(entries, offsets):
        out += name.encode().ljust(9, b"\0") + struct.pack("<I", off)
    out += b"\0" * 9 + struct.pack("<I", pos)
    for _, data in entries:
        out += data
    return bytes(out)


def make_sf2(samples: list[tuple[str, np.ndarray, int, int]]) -> bytes:
    """A minimal sfbk: INFO, sdta/smpl (int16, 46 zero samples after each) and pdta/shdr.

    ``samples``: (name, int16 data, sample rate, sample type: 1 mono, 2 right, 4 left, 0x8001 ROM).
    """
    def chunk(cid, payload):
        return cid + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")

    smpl, headers, pos = bytearray(), bytearray(), 0
    for name, data, rate, kind in samples:
        smpl += data.astype("<i2").tobytes() + b"\0" * 92
        headers += name.encode().ljust(20, b"\0") + struct.pack(
            "<IIIIIBbHH", pos, pos + len(data), pos, pos + len(data), rate, 60, 0, 0, kind)
        pos += len(data) + 46
    headers += b"EOS".ljust(20, b"\0") + b"\0" * 26
    info = chunk(b"LIST", b"INFO" + chunk(b"ifil", struct.pack("<HH", 2, 1)))
    sdta = chunk(b"LIST", b"sdta" + chunk(b"smpl", bytes(smpl)))
    pdta = chunk(b"LIST", b"pdta" + chunk(b"phdr", b"\0" * 38) + chunk(b"shdr", bytes(headers)))
    body = b"sfbk" + info + sdta + pdta
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_res_archive_yields_its_wav_entries_by_name():
    a, b = _wav(440), _wav(880, n=3000)
    data = make_res([("BIRDS01", a), ("FONT", b"not a wav at all"), ("JA_V2", b)])
    got = dict(res_entries("RESOURCE/A_WAVE2.RES", data))
    assert got == {"RESOURCE/A_WAVE2.RES!BIRDS01.wav": a, "RESOURCE/A_WAVE2.RES!JA_V2.wav": b}


@pytest.mark.parametrize("data", [b"\x05", struct.pack("<H", 500) + b"\0" * 40,
                                  make_res([("A", _wav(440))])[:40] + struct.pack("<I", 10 ** 9)])
def test_malformed_res_archive_is_refused(data):
    with pytest.raises(ArchiveError):
        list(res_entries("bad.RES", data))


def test_sf2_samples_become_wavs_and_right_halves_and_rom_are_skipped():
    t = np.arange(400)
    kick = (8000 * np.sin(2 * np.pi * 60 * t / 44100)).astype(np.int16)
    left = (5000 * np.sin(2 * np.pi * 300 * t / 22050)).astype(np.int16)
    right = (-left).astype(np.int16)
    rom = np.ones(100, dtype=np.int16)
    data = make_sf2([("36-Pearl22Kick-1", kick, 44100, 1), ("Hat-L", left, 22050, 4),
                     ("Hat-R", right, 22050, 2), ("Rom", rom, 44100, 0x8001)])
    got = dict(sf2_entries("kits/Black_Pearl.sf2", data))
    assert sorted(got) == ["kits/Black_Pearl.sf2!000 36-Pearl22Kick-1.wav", "kits/Black_Pearl.sf2!001 Hat-L.wav"]
    x, sr = sf.read(io.BytesIO(got["kits/Black_Pearl.sf2!000 36-Pearl22Kick-1.wav"]), dtype="int16")
    assert sr == 44100 and np.array_equal(x, kick)  # exactly the sample's own frames
    x, sr = sf.read(io.BytesIO(got["kits/Black_Pearl.sf2!001 Hat-L.wav"]), dtype="int16")
    assert sr == 22050 and np.array_equal(x, left)
    with pytest.raises(ArchiveError, match="SoundFont"):
        list(sf2_entries("x.sf2", b"RIFF\0\0\0\0WAVE"))


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_package_archives_are_opened_only_where_the_package_asks(tmp_path):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text("Package: fake\nVersion: 1\nArchitecture: all\nMaintainer: T <t@e.org>\n"
                                         "Description: fake\n")
    res = root / "usr/share/games/7kaa/RESOURCE"
    res.mkdir(parents=True)
    (res / "A_WAVE1.RES").write_bytes(make_res([("GONG", _wav(300))]))
    (res / "FNT_STD.RES").write_bytes(b"\x07\x00garbage")  # a font archive: malformed, skipped
    base = root / "usr/share/games/ufoai/base"
    base.mkdir(parents=True)
    with zipfile.ZipFile(base / "0snd.pk3", "w") as zf:
        zf.writestr("sound/ugv/diesel-idle.ogg", _wav(100))
    deb = tmp_path / "fake_1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True, capture_output=True)
    everything = frozenset({".res", ".pk3"}) | DEFAULT_ARCHIVES
    assert sorted(m.path for m in iter_members(deb, archives=everything)) == [
        "usr/share/games/7kaa/RESOURCE/A_WAVE1.RES!GONG.wav", "usr/share/games/ufoai/base/0snd.pk3!sound/ugv/diesel-idle.ogg"]
    assert list(iter_members(deb)) == []  # the default set opens neither


@pytest.mark.skipif(shutil.which("wavpack") is None or shutil.which("wvunpack") is None, reason="needs wavpack")
def test_wavpack_data_decodes_losslessly(tmp_path):
    x = (0.4 * np.sin(2 * np.pi * 220 * np.arange(4000) / 44100)).astype(np.float32)
    sf.write(tmp_path / "a.wav", x, 44100, subtype="PCM_16")
    subprocess.run(["wavpack", "-q", "-y", str(tmp_path / "a.wav"), "-o", str(tmp_path / "a.wv")], check=True,
                   capture_output=True)
    data = (tmp_path / "a.wv").read_bytes()
    assert data[:4] == b"wvpk"
    y, sr = decode(data)
    ref = sf.read(tmp_path / "a.wav", dtype="float32")[0]
    assert sr == 44100 and np.array_equal(y, ref)
