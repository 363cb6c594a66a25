"""The download cache: checksums, sidecar hashes, atomic landing and offline errors.

``huggingface_hub.hf_hub_download`` is replaced by a fake that serves bytes the tests made; the
fake writes into ``local_dir`` exactly as the real client does.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import huggingface_hub
import pytest

from audiosep import hub
from audiosep.hub import ChecksumError, PretrainedError, RemoteFile, WeightsUnavailableError, fetch_files

CONTENT = {
    "weights.bin": b"\x00\x01tiny weights" * 50,
    "tok/vocab.json": b'{"a": 0, "b": 1}',
}


def remote(filename: str, data: bytes, **kw) -> RemoteFile:
    kw.setdefault("sha256", hashlib.sha256(data).hexdigest())
    kw.setdefault("size", len(data))
    return RemoteFile(filename, repo_id="someone/tiny", path_in_repo=f"files/{filename}", **kw)


FILES = [remote(name, data) for name, data in CONTENT.items()]


class FakeHub:
    """Stands in for ``hf_hub_download``; serves ``served[path_in_repo]`` and counts calls."""

    def __init__(self, served: dict[str, bytes]) -> None:
        self.served = dict(served)
        self.calls: list[str] = []
        self.error: Exception | None = None

    def __call__(self, repo_id, filename, *, repo_type=None, revision=None, local_dir=None, **kw):
        self.calls.append(filename)
        if self.error is not None:
            raise self.error
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(self.served[filename])
        (Path(local_dir) / ".cache").mkdir(exist_ok=True)  # the real client leaves metadata here
        return str(out)


@pytest.fixture
def fake_hub(monkeypatch):
    fake = FakeHub({f"files/{name}": data for name, data in CONTENT.items()})
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    monkeypatch.setattr(hub, "_unreachable_reason", lambda url: None)  # the fake hub is "reachable"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return fake


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.startswith(".download-") or p.suffix == ".part")


def test_first_fetch_downloads_and_verifies(fake_hub, tmp_path):
    paths = fetch_files(FILES, tmp_path / "bundle")
    assert sorted(fake_hub.calls) == sorted(f"files/{n}" for n in CONTENT)
    for name, data in CONTENT.items():
        assert paths[name] == (tmp_path / "bundle" / name).resolve()
        assert paths[name].read_bytes() == data
    assert leftovers(tmp_path) == []


def test_second_fetch_uses_cache_without_network_or_rehash(fake_hub, tmp_path, monkeypatch):
    fetch_files(FILES, tmp_path)
    calls = list(fake_hub.calls)

    def no_hashing(path, *a, **k):
        raise AssertionError(f"{path} was hashed again although size and mtime did not change")

    monkeypatch.setattr(hub, "sha256_file", no_hashing)
    paths = fetch_files(FILES, tmp_path)
    assert fake_hub.calls == calls
    assert paths["weights.bin"].read_bytes() == CONTENT["weights.bin"]


def test_files_put_in_place_by_hand_are_verified_and_used(fake_hub, tmp_path):
    for name, data in CONTENT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    fetch_files(FILES, tmp_path)
    assert fake_hub.calls == []


@pytest.mark.parametrize("same_size", [True, False])
def test_corrupted_cached_file_is_detected_and_fetched_again(fake_hub, tmp_path, same_size):
    fetch_files(FILES, tmp_path)
    target = tmp_path / "weights.bin"
    good = CONTENT["weights.bin"]
    target.write_bytes(b"X" * len(good) if same_size else b"truncated")
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a later write
    fake_hub.calls.clear()
    paths = fetch_files(FILES, tmp_path)
    assert fake_hub.calls == ["files/weights.bin"]
    assert paths["weights.bin"].read_bytes() == good


def test_checksum_mismatch_on_download_raises_and_keeps_nothing(fake_hub, tmp_path):
    fake_hub.served["files/weights.bin"] = b"tampered" * 10
    expected = FILES[0].sha256
    got = hashlib.sha256(b"tampered" * 10).hexdigest()
    with pytest.raises(ChecksumError) as err:
        fetch_files(FILES[:1], tmp_path)
    assert expected in str(err.value) and got in str(err.value)
    assert FILES[0].url in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no file, no sidecar, no temporary folder
    assert isinstance(err.value, PretrainedError)


def test_offline_error_names_every_missing_file_url_and_folder(fake_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as err:
        fetch_files(FILES, tmp_path / "bundle")
    msg = str(err.value)
    folder = str((tmp_path / "bundle").resolve())
    for f in FILES:
        assert f.filename in msg
        assert f.url in msg
        assert str(Path(folder) / f.filename) in msg
    assert f"put them in {folder}" in msg
    assert fake_hub.calls == []


def test_download_errors_are_collected_for_all_files(fake_hub, tmp_path):
    fake_hub.error = ConnectionError("Failed to resolve 'huggingface.co'")
    with pytest.raises(WeightsUnavailableError) as err:
        fetch_files(FILES, tmp_path)
    msg = str(err.value)
    assert len(fake_hub.calls) == len(FILES)
    assert all(f.filename in msg and f.url in msg for f in FILES)
    assert "ConnectionError: Failed to resolve" in msg
    assert leftovers(tmp_path) == []


def test_only_missing_files_are_reported(fake_hub, tmp_path):
    fetch_files(FILES[:1], tmp_path)
    with pytest.raises(WeightsUnavailableError) as err:
        fetch_files(FILES, tmp_path, offline=True)
    assert "1 pretrained file(s)" in str(err.value)
    assert "tok/vocab.json" in str(err.value) and "weights.bin\n" not in str(err.value)


def test_unpinned_file_checks_size_and_logs_its_digest(fake_hub, tmp_path, caplog):
    data = CONTENT["weights.bin"]
    unpinned = remote("weights.bin", data, sha256=None)
    with caplog.at_level(logging.WARNING, logger="audiosep.hub"):
        fetch_files([unpinned], tmp_path)
    assert hashlib.sha256(data).hexdigest() in caplog.text
    wrong_size = remote("weights.bin", data, sha256=None, size=len(data) + 1)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(ChecksumError, match=f"got sha256 .* \\({len(data)} bytes\\)"):
        fetch_files([wrong_size], tmp_path)


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("AUDIOSEP_CACHE", raising=False)
    assert hub.cache_root() == Path.home() / ".cache" / "audiosep"
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "env"))
    assert hub.cache_root() == tmp_path / "env"
    assert hub.cache_root(tmp_path / "arg") == tmp_path / "arg"


def test_remote_file_urls_follow_the_hub_scheme():
    space = RemoteFile("a.ckpt", repo_id="Audio-AGI/AudioSep", path_in_repo="checkpoint/a.ckpt",
                       repo_type="space", revision="abc")
    model = RemoteFile("vocab.json", repo_id="FacebookAI/roberta-base", path_in_repo="vocab.json")
    assert space.url == "https://huggingface.co/spaces/Audio-AGI/AudioSep/resolve/abc/checkpoint/a.ckpt"
    assert model.url == "https://huggingface.co/FacebookAI/roberta-base/resolve/main/vocab.json"
    assert huggingface_hub.hf_hub_url("Audio-AGI/AudioSep", "checkpoint/a.ckpt", repo_type="space",
                                      revision="abc") == space.url
    with pytest.raises(ValueError, match="64 lower-case hex"):
        RemoteFile("x", repo_id="a/b", path_in_repo="x", sha256="ABC")


def test_unresolvable_host_fails_fast_without_calling_the_client(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: calls.append(a))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hub.RemoteFile, "url", property(lambda self: "https://no-such-host.invalid/x"))
    files = [RemoteFile(f"f{i}.bin", repo_id="a/b", path_in_repo=f"f{i}.bin") for i in range(2)]
    with pytest.raises(WeightsUnavailableError) as info:
        fetch_files(files, tmp_path)
    assert calls == []
    assert "cannot resolve no-such-host.invalid" in str(info.value)
    line = info.value.one_line()
    assert "\n" not in line and "f0.bin, f1.bin" in line and str(tmp_path) in line
