"""Tests for factsheet.datasets.folder.load_folder, on folders built in tmp_path."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import wavfile

from factsheet.audio import write_wav_pcm16
from factsheet.datasets.base import ClassLabel, write_class_labels
from factsheet.datasets.folder import load_folder
from factsheet.errors import InputError

CLASSES = [
    ClassLabel(0, "/m/09x0r", "Speech"),
    ClassLabel(1, "/m/0bt9lr", "Dog"),
    ClassLabel(2, "/m/05tny_", "Bark"),
    ClassLabel(3, "/m/04rlf", "Music"),
]


def tone(n: int, *, freq: float = 440.0, rate: int = 16000) -> np.ndarray:
    return 0.25 * np.sin(2 * np.pi * freq * np.arange(n) / rate)


def make_folder(tmp_path: Path, csv_text: str | None = None) -> dict[str, Path]:
    """Five WAVs (16k int16, 44.1k int16, 8k stereo int16, 16k float32, 16k int32 in a subfolder), CSV, labels."""
    wav_dir = tmp_path / "wavs"
    wav_dir.mkdir(parents=True)
    write_wav_pcm16(wav_dir / "speech.wav", tone(16000), sample_rate=16000)  # 1.0 s
    write_wav_pcm16(wav_dir / "dog.wav", tone(22050), sample_rate=44100)  # 0.5 s
    stereo = np.stack([tone(16000, rate=8000), -tone(16000, rate=8000)], axis=1)
    write_wav_pcm16(wav_dir / "music.wav", stereo, sample_rate=8000)  # 2.0 s, averages to 0
    wavfile.write(wav_dir / "quiet.wav", 16000, tone(8000).astype(np.float32))  # 0.5 s
    (wav_dir / "sub").mkdir()
    wavfile.write(wav_dir / "sub" / "loud.wav", 16000, (tone(24000) * 2**31).astype(np.int32))  # 1.5 s
    csv_path = tmp_path / "clips.csv"
    csv_path.write_text(csv_text if csv_text is not None else (
        "file,labels,speaker,snr_db,n_events\n"
        "speech.wav,Speech,female,10,1\n"
        "dog.wav,Dog;Bark,,2.5,2\n"
        "music.wav,Music,male,0,1\n"
        "quiet.wav,,female,-5,0\n"
        "sub/loud.wav,Speech;Music,male,20,2\n"
    ))
    labels_path = tmp_path / "class_labels_indices.csv"
    write_class_labels(labels_path, CLASSES)
    return {"wav_dir": wav_dir, "csv_path": csv_path, "class_labels_path": labels_path}


def error_line(paths: dict[str, Path], **kwargs: object) -> str:
    with pytest.raises(InputError) as ei:
        load_folder(**paths, **kwargs)  # type: ignore[arg-type]
    line = ei.value.line()
    assert "\n" not in line
    return line


def test_loads_labels_metadata_and_clips(tmp_path: Path) -> None:
    ds = load_folder(**make_folder(tmp_path))
    assert ds.n_clips == 5 and ds.n_classes == 4 and ds.sample_rate == 16000
    assert ds.name == "wavs"
    expected = np.array([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 1]], dtype=np.uint8)
    assert ds.labels.dtype == np.uint8
    np.testing.assert_array_equal(ds.labels, expected)
    assert ds.class_labels == CLASSES
    # clips keep their own length, at 16 kHz, mono float32 in [-1, 1]
    assert [c.shape[0] for c in ds.clips] == [16000, 8000, 32000, 8000, 24000]
    assert all(c.dtype == np.float32 and c.ndim == 1 and np.abs(c).max() <= 1.0 for c in ds.clips)
    np.testing.assert_allclose(ds.clips[2], 0.0, atol=1e-4)  # stereo L = -R averages to silence
    np.testing.assert_allclose(ds.clips[3], tone(8000), atol=1e-7)  # float WAV taken as is


def test_metadata_columns_and_dtypes(tmp_path: Path) -> None:
    meta = load_folder(**make_folder(tmp_path)).metadata
    assert list(meta.columns) == ["clip_id", "speaker", "snr_db", "n_events"]
    assert meta["clip_id"].tolist() == ["speech.wav", "dog.wav", "music.wav", "quiet.wav", "sub/loud.wav"]
    assert meta["speaker"].tolist() == ["female", "", "male", "female", "male"]  # an empty cell: stays str
    assert meta["snr_db"].dtype == np.float64 and meta["snr_db"].tolist() == [10, 2.5, 0, -5, 20]
    assert meta["n_events"].dtype == np.int64 and meta["n_events"].tolist() == [1, 2, 1, 0, 2]
    assert not pd.api.types.is_numeric_dtype(meta["speaker"])


def test_card(tmp_path: Path) -> None:
    paths = make_folder(tmp_path)
    card = load_folder(**paths).card
    json.dumps(card)  # JSON-able
    assert card["description"] == "user-supplied WAV folder"
    assert card["wav_dir"] == str(paths["wav_dir"]) and card["csv_path"] == str(paths["csv_path"])
    assert card["class_labels_path"] == str(paths["class_labels_path"])
    assert card["n_clips"] == 5
    assert card["positives_per_class"] == {"Speech": 2, "Dog": 1, "Bark": 1, "Music": 2}
    assert card["n_clips_without_labels"] == 1
    assert card["original_sample_rates"] == {"16000": 3, "44100": 1, "8000": 1}
    assert card["channels"] == {"1": 4, "2": 1}
    assert card["sample_formats"] == {"float32": 1, "pcm16": 3, "pcm32": 1}
    assert card["n_resampled"] == 2 and card["n_downmixed"] == 1
    assert card["duration_s"] == {"min": 0.5, "median": 1.0, "max": 2.0}


def test_mids_accepted_and_mixed_with_names(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels\nspeech.wav,/m/09x0r\ndog.wav, /m/0bt9lr ; Bark\n")
    ds = load_folder(**paths)
    np.testing.assert_array_equal(ds.labels, [[1, 0, 0, 0], [0, 1, 1, 0]])
    assert list(ds.metadata.columns) == ["clip_id"]


def test_label_separator_and_column_names_configurable(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "wav,tags,site\nspeech.wav,Speech|Music,A\ndog.wav,Dog,B\n")
    ds = load_folder(**paths, file_column="wav", labels_column="tags", label_separator="|", name="mine")
    np.testing.assert_array_equal(ds.labels, [[1, 0, 0, 1], [0, 1, 0, 0]])
    assert ds.name == "mine"
    assert list(ds.metadata.columns) == ["clip_id", "site"]
    assert ds.card["csv_columns"] == {"file": "wav", "labels": "tags", "label_separator": "|"}


def test_unknown_label_names_row_and_value(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels\nspeech.wav,Speech\ndog.wav,Dog;Unknwn\n")
    line = error_line(paths)
    assert line == (f"error: {paths['csv_path']}: row 3, column labels = 'Unknwn': "
                    f"unknown label (not in {paths['class_labels_path']})")


def test_unknown_label_hints_case(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels\nspeech.wav,speech\n")
    assert "row 2, column labels = 'speech'" in error_line(paths) and "did you mean 'Speech'" in error_line(paths)


def test_row_numbers_count_blank_lines(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels\nspeech.wav,Speech\n\ndog.wav,Nope\n")
    assert "row 4, column labels = 'Nope'" in error_line(paths)


def test_missing_column_lists_columns_present(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,label,speaker\nspeech.wav,Speech,f\n")
    line = error_line(paths)
    assert line == (f"error: {paths['csv_path']}: column labels: "
                    "missing column (columns present: file, label, speaker)")


def test_missing_wav_names_row_and_file(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels\nspeech.wav,Speech\ngone.wav,Dog\n")
    line = error_line(paths)
    assert line.startswith(f"error: {paths['csv_path']}: row 3, column file = 'gone.wav': ")
    assert str(paths["wav_dir"] / "gone.wav") in line and "file not found" in line


def test_corrupt_wav_names_row_and_file(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels\nspeech.wav,Speech\nbad.wav,Dog\n")
    (paths["wav_dir"] / "bad.wav").write_text("not audio at all")
    line = error_line(paths)
    assert "row 3, column file = 'bad.wav'" in line and str(paths["wav_dir"] / "bad.wav") in line


def test_duplicate_file(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels\nspeech.wav,Speech\ndog.wav,Dog\nspeech.wav,Music\n")
    line = error_line(paths)
    assert "row 4, column file = 'speech.wav'" in line and "duplicate file name (first on row 2)" in line


def test_empty_file_name(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels\nspeech.wav,Speech\n,Dog\n")
    assert "row 3, column file: empty file name" in error_line(paths)


@pytest.mark.parametrize("text", ["", "file,labels\n", "file,labels\n\n\n"])
def test_empty_csv(tmp_path: Path, text: str) -> None:
    paths = make_folder(tmp_path, text)
    line = error_line(paths)
    assert line.startswith(f"error: {paths['csv_path']}: ")
    assert ("empty" in line) or ("no data rows" in line)


def test_ragged_csv_is_input_error(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels\nspeech.wav,Speech,extra\n")
    assert error_line(paths).startswith(f"error: {paths['csv_path']}: cannot parse CSV")


def test_missing_csv_and_folder(tmp_path: Path) -> None:
    paths = make_folder(tmp_path)
    paths["csv_path"].unlink()
    assert error_line(paths) == f"error: {paths['csv_path']}: CSV file not found"
    paths = make_folder(tmp_path / "b")
    paths["wav_dir"] = tmp_path / "nowhere"
    assert error_line(paths) == f"error: {tmp_path / 'nowhere'}: WAV folder not found"


def test_reserved_clip_id_column(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels,clip_id\nspeech.wav,Speech,x\n")
    assert "column clip_id" in error_line(paths)


def test_file_column_may_be_clip_id(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "clip_id,labels,site\nspeech.wav,Speech,A\n")
    ds = load_folder(**paths, file_column="clip_id")
    assert list(ds.metadata.columns) == ["clip_id", "site"] and ds.metadata["clip_id"].tolist() == ["speech.wav"]


def test_resampled_to_requested_rate(tmp_path: Path) -> None:
    ds = load_folder(**make_folder(tmp_path), sample_rate=8000)
    assert ds.sample_rate == 8000
    assert [c.shape[0] for c in ds.clips] == [8000, 4000, 16000, 4000, 12000]
    assert ds.card["n_resampled"] == 4


def test_sha256_is_stable(tmp_path: Path) -> None:
    paths = make_folder(tmp_path)
    assert load_folder(**paths).sha256() == load_folder(**paths).sha256()


def test_trailing_comma_column_dropped_and_pcm24_counted(tmp_path: Path) -> None:
    paths = make_folder(tmp_path, "file,labels,site,\nspeech.wav,Speech,A,\nhigh.wav,Music,B,\n")
    frames = b"".join(int(v).to_bytes(3, "little", signed=True) for v in (np.arange(100) * 1000))
    with wave.open(str(paths["wav_dir"] / "high.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(16000)
        w.writeframes(frames)
    ds = load_folder(**paths)
    assert list(ds.metadata.columns) == ["clip_id", "site"]
    assert ds.card["sample_formats"] == {"pcm16": 1, "pcm24": 1}
    np.testing.assert_allclose(ds.clips[1], np.arange(100) * 1000 / 2**23, atol=1e-7)
