"""audio-factsheet: robustness and fairness FactSheets for audio classifiers."""

__version__ = "0.1.0"
