"""Datasets: clips, multi-hot labels, per-clip metadata and a dataset card."""

from factsheet.datasets.base import AudioDataset, ClassLabel, fit_length, read_class_labels, write_class_labels

__all__ = ["AudioDataset", "ClassLabel", "fit_length", "read_class_labels", "write_class_labels"]
