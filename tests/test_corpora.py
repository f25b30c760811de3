"""The corpus loaders on small trees in each published layout (tests/_corpora.py): what they read, the
awkward cases real files have, skipping unreadable audio, and one-line errors for a wrong layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _corpora import (BOM, SHORT_SAMPLES, UNKNOWN_MID, UNKNOWN_NAME, csv_text, demo_clips, make_audioset, make_esc50,
                      make_fsd50k, make_urbansound8k)
from factsheet.config import load_config
from factsheet.datasets.corpora import load_audioset, load_esc50, load_fsd50k, load_urbansound8k
from factsheet.errors import InputError

AUDIOSET_VOCAB = [("/m/09x0r", "Speech"), ("/m/05zppz", "Male speech, man speaking"), ("/m/0bt9lr", "Dog"),
                  ("/m/05tny_", "Bark"), ("/m/06mb1", "Rain")]
FSD_VOCAB = [("/m/09x0r", "Speech"), ("/m/05zppz", "Male_speech_and_man_speaking"), ("/m/0bt9lr", "Dog"),
             ("/m/0f8s22", "Bicycle_bell"), ("/m/06mb1", "Rain")]


@pytest.fixture(scope="module")
def clips():
    """Multi-label clips relabelled into AudioSet-style names, and single-label clips of 4 classes."""
    multi = demo_clips(n=40, seed=3, keep=["Speech", "Dog", "Rain", "Whistling"])
    rename = {"Speech": ["Speech", "Male speech, man speaking"], "Dog": ["Dog", "Bark"], "Rain": ["Rain"],
              "Whistling": ["Bicycle bell"]}
    multi = [(c, [n for k in labels for n in rename[k]]) for c, labels in multi]
    single = demo_clips(n=200, seed=4, keep=["Dog", "Rain", "Siren", "Bird"], single=True)
    return multi, single


def one_line(fn, **kwargs) -> str:
    with pytest.raises(InputError) as ei:
        fn(**kwargs)
    line = ei.value.line()
    assert "\n" not in line and line.startswith("error: ")
    return line


def test_audioset_reads_segments_vocabulary_and_pattern(tmp_path, clips):
    vocab = AUDIOSET_VOCAB + [("/m/0f8s22", "Bicycle bell")]
    tree = make_audioset(tmp_path / "as", clips[0], vocabulary=vocab)
    ds = load_audioset(root=tree.root, file_pattern="{YTID}_{start_seconds:.3f}.wav", on_unreadable="skip",
                       max_skipped_fraction=0.1)
    assert tree.metadata.read_text(encoding="utf-8").startswith(BOM + "# Segments")
    assert ds.n_listed == tree.n_listed and ds.n_clips == tree.n_listed - 1
    assert [s.file for s in ds.skipped] == tree.missing and ds.skipped[0].reason == "file not found"
    names = [c.display_name for c in ds.class_labels]
    assert names[:6] == [n for _, n in vocab] and names[6] == UNKNOWN_MID  # the unlisted mid: a class of its own
    assert ds.card["labels_not_in_vocabulary"] == {UNKNOWN_MID: 1}
    speech = [i for i, (_, labels) in enumerate(clips[0][:ds.n_clips]) if "Speech" in labels]
    male = names.index("Male speech, man speaking")
    assert ds.labels[speech, male].all() and ds.labels[:, male].sum() == len(speech)  # a quoted list of mids
    assert list(ds.metadata.columns) == ["clip_id"]  # no group columns in a segment list
    assert ds.metadata["clip_id"][0] == tree.short and ds.clips[0].shape == (SHORT_SAMPLES,)
    json.dumps(ds.card)


def test_audioset_default_pattern_and_plain_header(tmp_path, clips):
    tree = make_audioset(tmp_path / "as", clips[0][:5], vocabulary=AUDIOSET_VOCAB + [("/m/0f8s22", "Bicycle bell")],
                         file_pattern="{YTID}.wav", awkward=False)
    text = tree.metadata.read_text().replace("# YTID, start", "YTID, start")
    tree.metadata.write_text(text)
    ds = load_audioset(root=tree.root)
    assert ds.n_clips == 5 and ds.metadata["clip_id"][0].endswith(".wav") and not ds.skipped


def test_fsd50k_eval_and_dev(tmp_path, clips):
    rename = {"Male speech, man speaking": "Male_speech_and_man_speaking", "Bicycle bell": "Bicycle_bell"}
    fsd_clips = [(c, [rename.get(n, n) for n in labels if n != "Bark"]) for c, labels in clips[0]]
    tree = make_fsd50k(tmp_path / "fsd", fsd_clips, vocabulary=FSD_VOCAB)
    ds = load_fsd50k(root=tree.root, on_unreadable="skip", max_skipped_fraction=0.1)
    assert ds.name == "fsd50k-eval" and ds.n_clips == tree.n_listed - 1 and [s.file for s in ds.skipped] == tree.missing
    assert ds.card["labels_not_in_vocabulary"] == {UNKNOWN_NAME: 1}  # named from the aligned labels column
    assert ds.class_labels[-1].mid == UNKNOWN_MID and list(ds.metadata.columns) == ["clip_id"]
    bell = [c.display_name for c in ds.class_labels].index("Bicycle_bell")
    assert ds.labels[:, bell].sum() == sum("Bicycle_bell" in labels for _, labels in fsd_clips[:ds.n_clips])
    dev = make_fsd50k(tmp_path / "fsd", fsd_clips, vocabulary=FSD_VOCAB, split="dev", awkward=False)
    ds = load_fsd50k(root=dev.root, split="dev")
    assert list(ds.metadata.columns) == ["clip_id", "split"] and set(ds.metadata["split"]) == {"train", "val"}


def test_urbansound8k_folds_and_groups(tmp_path, clips):
    classes = ["Bird", "Dog", "Rain", "Siren"]
    tree = make_urbansound8k(tmp_path / "us", clips[1], classes=classes, awkward=False)
    ds = load_urbansound8k(root=tree.root)
    assert [c.display_name for c in ds.class_labels] == classes and (ds.labels.sum(axis=1) == 1).all()
    assert list(ds.metadata.columns) == ["clip_id", "fold", "salience"]
    assert set(ds.metadata["salience"]) == {"foreground", "background"}
    assert set(ds.metadata["fold"]) == {"fold1", "fold2", "fold3"}
    two = load_urbansound8k(root=tree.root, folds=(2,))
    assert set(two.metadata["fold"]) == {"fold2"} and two.name == "urbansound8k-folds-2"
    assert all(cid.startswith("fold2/") for cid in two.metadata["clip_id"])


def test_esc50_groups_and_bom(tmp_path, clips):
    classes = ["Bird", "Dog", "Rain", "Siren"]
    tree = make_esc50(tmp_path / "esc", clips[1], classes=classes)
    ds = load_esc50(root=tree.root, on_unreadable="skip", max_skipped_fraction=0.5)
    assert list(ds.metadata.columns) == ["clip_id", "fold", "esc10"] and set(ds.metadata["esc10"]) == {"yes", "no"}
    assert ds.metadata["clip_id"][0] == tree.short and ds.clips[0].shape == (SHORT_SAMPLES,)
    targets = np.array([classes.index(labels[0]) for _, labels in clips[1]])
    np.testing.assert_array_equal(np.argmax(ds.labels, axis=1), targets[: ds.n_clips])


def test_missing_file_fails_by_default_naming_row_and_file(tmp_path, clips):
    tree = make_esc50(tmp_path / "esc", clips[1], classes=["Bird", "Dog", "Rain", "Siren"])
    line = one_line(load_esc50, root=tree.root)
    assert line.startswith(f"error: {tree.metadata}: row {tree.n_listed + 1}, column filename = '{tree.missing[0]}'")
    assert "file not found" in line


def test_too_many_skipped_is_one_line(tmp_path, clips):
    tree = make_urbansound8k(tmp_path / "us", clips[1], classes=["Bird", "Dog", "Rain", "Siren"])
    for wav in sorted((tree.root / "audio" / "fold2").glob("*.wav")):
        wav.write_bytes(b"RIFF\x00\x00not a wav")
    line = one_line(load_urbansound8k, root=tree.root, on_unreadable="skip", max_skipped_fraction=0.1)
    assert str(tree.metadata) in line and "above dataset.max_skipped_fraction = 0.1" in line
    ds = load_urbansound8k(root=tree.root, on_unreadable="skip", max_skipped_fraction=0.6)
    assert any("not a readable audio file" in s.reason for s in ds.skipped) and len(ds.skipped) >= 2


@pytest.mark.parametrize("breakage, expect", [
    ("no metadata", "esc50.csv: ESC-50 metadata file not found (expected the ESC-50 layout"),
    ("no fold column", "esc50.csv: column fold: missing column (expected filename, fold, target, category"),
    ("fold 6", "esc50.csv: row 2, column fold = '6': must be 1..5"),
    ("fold x", "esc50.csv: row 2, column fold = 'x': not an integer"),
    ("class clash", "esc50.csv: row 3, columns target and category"),
    ("no audio", "audio: folder not found (expected the ESC-50 layout"),
])
def test_wrong_esc50_layout_is_one_line(tmp_path, clips, breakage, expect):
    tree = make_esc50(tmp_path / "esc", clips[1][:4], classes=["Bird", "Dog", "Rain", "Siren"], awkward=False)
    rows = [r.split(",") for r in tree.metadata.read_text().splitlines()]
    if breakage == "no metadata":
        tree.metadata.unlink()
    elif breakage == "no audio":
        (tree.root / "audio").rename(tree.root / "wavs")
    else:
        if breakage == "no fold column":
            rows = [r[:1] + r[2:] for r in rows]
        elif breakage.startswith("fold"):
            rows[1][1] = breakage.split()[1]
        else:
            rows[2][2], rows[2][3] = rows[1][2], "Cat" if rows[1][3] != "Cat" else "Owl"
        tree.metadata.write_text(csv_text(rows))
    assert expect in one_line(load_esc50, root=tree.root)


def test_wrong_fsd50k_and_audioset_layouts(tmp_path, clips):
    fsd = make_fsd50k(tmp_path / "fsd", [(c, ["Speech"]) for c, _ in clips[1][:3]], vocabulary=FSD_VOCAB)
    assert "dev.csv: FSD50K ground-truth file not found (expected the FSD50K layout" in one_line(
        load_fsd50k, root=fsd.root, split="dev")
    fsd.metadata.write_text('fname,labels,mids\n1,"Speech,Dog","/m/09x0r"\n')
    assert "row 2, columns labels and mids: 2 labels but 1 mids" in one_line(load_fsd50k, root=fsd.root)
    fsd.metadata.write_text("fname,labels\n1,Speech\n")
    assert "column mids: missing column" in one_line(load_fsd50k, root=fsd.root)
    aset = make_audioset(tmp_path / "as", clips[0][:3], vocabulary=AUDIOSET_VOCAB + [("/m/0f8s22", "Bicycle bell")],
                         awkward=False)
    aset.metadata.write_text('--4gqARaEJE, 0.000, 10.000, "/m/09x0r"\n')
    assert "row 1: data before the header (expected the comment '# YTID, start_seconds" in one_line(
        load_audioset, root=aset.root)
    aset.metadata.write_text('# YTID, start_seconds, end_seconds, positive_labels\n--4gqARaEJE, 0.000, 10.000\n')
    assert "row 2 = '--4gqARaEJE, 0.000, 10.000': 3 fields, expected 4" in one_line(load_audioset, root=aset.root)
    assert "balanced_train_segments.csv: AudioSet segments CSV not found" in one_line(
        load_audioset, root=aset.root, split="balanced_train")


def write_config(tmp_path: Path, body: str) -> Path:
    (tmp_path / "corpus").mkdir(exist_ok=True)
    p = tmp_path / "c.toml"
    p.write_text(body)
    return p


@pytest.mark.parametrize("body, field, value", [
    ("kind = 'esc50'\n", "dataset.root", None),
    ("kind = 'esc50'\nroot = 'nowhere'\n", "dataset.root", "nowhere"),
    ("kind = 'esc50'\nroot = 'corpus'\nfolds = [6]\n", "dataset.folds", [6]),
    ("kind = 'urbansound8k'\nroot = 'corpus'\nfolds = [1, 1]\n", "dataset.folds", [1, 1]),
    ("kind = 'fsd50k'\nroot = 'corpus'\nfolds = [1]\n", "dataset.folds", [1]),
    ("kind = 'fsd50k'\nroot = 'corpus'\nsplit = 'train'\n", "dataset.split", "train"),
    ("kind = 'esc50'\nroot = 'corpus'\ncsv = 'x.csv'\n", "dataset.csv", "x.csv"),
    ("kind = 'audioset'\nroot = 'corpus'\nfile_pattern = '{id}.wav'\n", "dataset.file_pattern", "{id}.wav"),
    ("kind = 'audioset'\nroot = 'corpus'\nfile_pattern = 'a.wav'\n", "dataset.file_pattern", "a.wav"),
    ("kind = 'esc50'\nroot = 'corpus'\nmax_skipped_fraction = 1.5\n", "dataset.max_skipped_fraction", 1.5),
    ("kind = 'esc50'\nroot = 'corpus'\non_unreadable = 'ignore'\n", "dataset.on_unreadable", "ignore"),
    ("kind = 'esc50'\nroot = 'corpus'\nlabel_mapping = 'map.csv'\n", "dataset.label_mapping", "map.csv"),
    ("label_mapping = 'mid'\n", "dataset.label_mapping", "mid"),
    ("root = 'corpus'\n", "dataset.root", "corpus"),
    ("split = 'dev'\n", "dataset.split", "dev"),
    ("kind = 'esc50'\nroot = 'corpus'\nsplit = 'dev'\n", "dataset.split", "dev"),
])
def test_bad_corpus_config_is_one_line(tmp_path, body, field, value):
    with pytest.raises(InputError) as ei:
        load_config(write_config(tmp_path, "[dataset]\n" + body))
    line = ei.value.line()
    assert ei.value.field == field and "c.toml" in line and "\n" not in line
    if isinstance(value, str) and field in ("dataset.root", "dataset.csv", "dataset.label_mapping") and value != "mid":
        assert line.endswith("not found") or "only for" in line or "not used" in line
        assert value in line
    else:
        assert ei.value.value == value


def test_corpus_config_resolves_paths_against_its_folder(tmp_path):
    (tmp_path / "map.csv").write_text("dataset_label,model_label\n")
    cfg = load_config(write_config(tmp_path, "[dataset]\nkind = 'esc50'\nroot = 'corpus'\nfolds = [1, 2]\n"
                                             "label_mapping = 'map.csv'\non_unreadable = 'skip'\n"))
    d = cfg.dataset
    assert d.root == tmp_path / "corpus" and d.folds == (1, 2) and d.label_mapping == str(tmp_path / "map.csv")
    assert cfg.to_dict()["dataset"]["folds"] == [1, 2]
    assert load_config(write_config(tmp_path, "[dataset]\nkind = 'esc50'\nroot = 'corpus'\nlabel_mapping = 'name'\n"
                                    )).dataset.label_mapping == "name"
