"""Reading training manifests (.json, .jsonl, .csv) and their error messages."""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from audiosep.train.manifest import ClipRecord, ManifestError, check_audio_files, read_manifest, read_manifests


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_reference_json_and_relative_paths(tmp_path):
    doc = {"data": [
        {"wav": "audio/a.wav", "caption": "a dog barks"},
        {"wav": "/abs/b.flac", "caption": " rain ", "labels": ["Rain", "Weather"]},
        {"wav": "../c.wav", "caption": "piano", "label": "Music; Piano"},
    ]}
    m = _write(tmp_path / "lists" / "train.json", json.dumps(doc))
    records = read_manifest(m)
    assert records == [
        ClipRecord(tmp_path / "lists" / "audio" / "a.wav", "a dog barks", ()),
        ClipRecord(Path("/abs/b.flac"), "rain", ("Rain", "Weather")),
        ClipRecord(tmp_path / "c.wav", "piano", ("Music", "Piano")),
    ]
    assert all(r.path.is_absolute() for r in records)


def test_relative_manifest_path_resolves_against_its_folder(tmp_path, monkeypatch):
    _write(tmp_path / "sub" / "m.jsonl", '{"path": "x.wav", "caption": "c"}\n')
    monkeypatch.chdir(tmp_path)
    (record,) = read_manifest("sub/m.jsonl")
    assert record.path == tmp_path / "sub" / "x.wav"


def test_jsonl_and_csv_and_caption_from_labels(tmp_path):
    jl = _write(tmp_path / "m.jsonl", '{"audio": "a.wav", "text": "hello"}\n\n{"wav": "b.wav", "labels": "Dog;Bark"}\n')
    assert read_manifest(jl) == [
        ClipRecord(tmp_path / "a.wav", "hello"),
        ClipRecord(tmp_path / "b.wav", "Dog, Bark", ("Dog", "Bark")),
    ]
    csv = _write(
        tmp_path / "m.csv",
        'Path,Caption,Labels\n'
        'a.wav,"a car, then a horn","Vehicle horn, car horn, honking;Car"\n'
        '\n'
        'b.wav,birds,\n',
    )
    assert read_manifest(csv) == [
        ClipRecord(tmp_path / "a.wav", "a car, then a horn", ("Vehicle horn, car horn, honking", "Car")),
        ClipRecord(tmp_path / "b.wav", "birds", ()),
    ]
    both = read_manifests([jl, csv])
    assert [r.caption for r in both] == ["hello", "Dog, Bark", "a car, then a horn", "birds"]


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("m.json", '{"data": [{"caption": "x"}]}', [r"m\.json, data item 0", "missing the audio path", "wav"]),
        ("m.json", '{"data": [{"wav": "a.wav"}]}', [r"m\.json, data item 0", "missing the caption", "caption"]),
        ("m.json", '{"data": [{"wav": "a.wav", "caption": 3}]}', [r"m\.json, data item 0", "caption must be a string"]),
        ("m.json", '{"data": [{"wav": "a", "caption": "c", "labels": 5}]}',
         [r"m\.json, data item 0", "labels must be"]),
        ("m.json", '{"data": [', [r"m\.json", "invalid JSON"]),
        ("m.json", '{"items": []}', [r"m\.json", '"data"']),
        ("m.json", '{"data": []}', [r"m\.json", "no records"]),
        ("m.jsonl", '{"wav": "a", "caption": "c"}\nnot json\n', [r"m\.jsonl, line 2", "invalid JSON"]),
        ("m.jsonl", '{"wav": "a", "caption": "c"}\n{"wav": "b"}\n', [r"m\.jsonl, line 2", "missing the caption"]),
        ("m.csv", "file,caption\na.wav,x\n", [r"m\.csv", "no audio path column", "path/wav/audio"]),
        ("m.csv", "wav,title\na.wav,x\n", [r"m\.csv", "no caption column", "caption/text"]),
        ("m.csv", "wav,caption\na.wav,x\nb.wav,\n", [r"m\.csv, row at line 3", "missing the caption"]),
        ("m.csv", "", [r"m\.csv", "header"]),
        ("m.txt", "a.wav", [r"m\.txt", "unknown manifest format", r"\.json, \.jsonl, \.csv"]),
    ],
)
def test_errors_name_the_file_the_record_and_the_problem(tmp_path, name, text, expected):
    m = _write(tmp_path / name, text)
    with pytest.raises(ManifestError) as info:
        read_manifest(m)
    for pattern in expected:
        assert re.search(pattern, str(info.value)), (pattern, str(info.value))


def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_manifest(tmp_path / "nope.json")
    with pytest.raises(ManifestError, match="no manifests"):
        read_manifests([])


def test_byte_order_marks_are_accepted(tmp_path):
    for name, text in [("m.json", '{"data": [{"wav": "a.wav", "caption": "x"}]}'),
                       ("m.jsonl", '{"wav": "a.wav", "caption": "x"}\n'), ("m.csv", "wav,caption\na.wav,x\n")]:
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert read_manifest(tmp_path / name) == [ClipRecord(tmp_path / "a.wav", "x")]


@pytest.mark.parametrize("name", ["m.json", "m.jsonl", "m.csv"])
def test_text_that_is_not_utf8_is_named(tmp_path, name):
    (tmp_path / name).write_bytes(b"\xff\xfe wav,caption\n")
    with pytest.raises(ManifestError, match=rf"{name} is not UTF-8 text .*save it as UTF-8"):
        read_manifest(tmp_path / name)


def test_a_folder_is_not_a_manifest(tmp_path):
    (tmp_path / "lists.json").mkdir()
    with pytest.raises(ManifestError, match=r"manifest .*lists\.json is a folder; list the manifest file itself"):
        read_manifest(tmp_path / "lists.json")


def _records(tmp_path, n, existing=()):
    for i in existing:
        (tmp_path / f"c{i}.wav").write_bytes(b"")
    return [ClipRecord(tmp_path / f"c{i}.wav", "x") for i in range(n)]


def test_all_audio_files_missing_is_one_error_naming_where(tmp_path):
    with pytest.raises(ManifestError, match=r"none of the 3 audio files listed in data.train_manifests \(.*m\.json\) "
                                            r"exists \(the first: .*c0\.wav\); a relative path in a manifest is read "
                                            r"from the manifest's folder"):
        check_audio_files(_records(tmp_path, 3), [tmp_path / "m.json"])
    with pytest.raises(ManifestError, match=r"the audio file listed in data.val_manifests \(v\.json\) does not exist: .*c0\.wav"):
        check_audio_files(_records(tmp_path, 1), ["v.json"], "data.val_manifests")


def test_some_audio_files_missing_is_a_warning_with_the_count(tmp_path):
    with pytest.warns(RuntimeWarning, match=r"2 of the 4 audio files listed in data.train_manifests .* are missing "
                                            r"\(the first: .*c1\.wav\); training skips them"):
        assert check_audio_files(_records(tmp_path, 4, existing=(0, 3)), ["m.json"]) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_audio_files(_records(tmp_path, 4, existing=range(4)), ["m.json"]) == 0


def test_long_lists_are_checked_by_an_even_sample(tmp_path, monkeypatch):
    monkeypatch.setattr("audiosep.train.manifest.MAX_CHECKED", 10)
    with pytest.raises(ManifestError, match=r"none of the 10 audio files checked \(of 100\) listed in"):
        check_audio_files(_records(tmp_path, 100), ["m.json"])


def test_phrasings_are_read_from_json_jsonl_and_csv_and_package_is_ignored(tmp_path):
    entry = {"wav": "a.wav", "caption": "a dog barking", "captions": ["a dog barking", " dogs ", "Dog, bark", "dogs"],
             "labels": ["dog"], "package": "lugaru-data"}
    expected = ClipRecord(tmp_path / "a.wav", "a dog barking", ("dog",), ("a dog barking", "dogs", "Dog, bark"))
    assert read_manifest(_write(tmp_path / "m.json", json.dumps({"data": [entry]}))) == [expected]
    assert read_manifest(_write(tmp_path / "m.jsonl", json.dumps(entry) + "\n")) == [expected]
    csv = _write(tmp_path / "m.csv", 'wav,caption,captions,labels,package\n'
                                     'a.wav,a dog barking,"a dog barking; dogs;Dog, bark",dog,lugaru-data\n')
    assert read_manifest(csv) == [expected]
    # no caption: the first phrasing; no phrasings: an empty tuple (training always uses the caption)
    only = _write(tmp_path / "o.jsonl", '{"wav": "a.wav", "captions": ["rain", "rainfall"]}\n{"wav": "b.wav", "caption": "x"}\n')
    assert [(r.caption, r.captions) for r in read_manifest(only)] == [("rain", ("rain", "rainfall")), ("x", ())]
    with pytest.raises(ManifestError, match=r"data item 0: captions must be a string or a list of strings"):
        read_manifest(_write(tmp_path / "bad.json", '{"data": [{"wav": "a", "caption": "c", "captions": [1]}]}'))
