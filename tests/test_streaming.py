"""Datasets of files keep their clips on disk: the lazy clips and the fitted view agree exactly with the
in-memory path (same content hash, same fitted waveforms), and a file changed mid-run is one line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from factsheet.datasets.base import FileClips, FittedClips, fit_clips, fit_length
from factsheet.datasets.folder import load_folder
from factsheet.errors import InputError

from test_folder_dataset import make_folder


@pytest.fixture()
def folder_ds(tmp_path):
    paths = make_folder(tmp_path)
    return load_folder(**paths)


def test_file_dataset_holds_no_samples_and_hashes_like_the_in_memory_one(folder_ds):
    assert isinstance(folder_ds.clips, FileClips)
    assert not any(isinstance(v, np.ndarray) and v.size > 100 for v in vars(folder_ds.clips).values())
    in_memory = dataclasses.replace(folder_ds, clips=[folder_ds.clips[i] for i in range(folder_ds.n_clips)])
    assert folder_ds.sha256() == in_memory.sha256()
    assert folder_ds.clips.lengths == [c.shape[0] for c in in_memory.clips]


@pytest.mark.parametrize("n_samples", [4000, 15600, 40000])
def test_fitted_view_equals_fit_length(folder_ds, n_samples):
    lazy, counts = fit_clips(folder_ds.clips, n_samples=n_samples)
    eager, counts_eager = fit_length([folder_ds.clips[i] for i in range(folder_ds.n_clips)], n_samples=n_samples)
    assert isinstance(lazy, FittedClips) and lazy.shape == eager.shape and counts == counts_eager
    np.testing.assert_array_equal(lazy[:], eager)
    np.testing.assert_array_equal(lazy[1:4], eager[1:4])
    np.testing.assert_array_equal(lazy[np.array([4, 0, 2])], eager[[4, 0, 2]])
    np.testing.assert_array_equal(lazy[3], eager[3])
    assert lazy[0:2].dtype == np.float32


def test_file_changed_during_the_run_is_one_line(folder_ds):
    from factsheet.audio import write_wav_pcm16

    path = folder_ds.clips.paths[0]
    write_wav_pcm16(path, np.zeros(123), sample_rate=16000)
    with pytest.raises(InputError) as e:
        folder_ds.clips[0]
    assert str(path) in e.value.line() and "changed while the run read it" in e.value.line()
