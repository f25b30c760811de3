"""Every valid run ends cleanly: a model that separates the classes perfectly (d' infinite, stored as null) on
data where one class has no positives prints "undefined (reason)" instead of crashing after writing its files."""

from __future__ import annotations

import json

import numpy as np

from factsheet.audio import write_wav_pcm16
from factsheet.cli import main

MODEL = '''
import numpy as np

def make_forward(sample_rate, clip_samples):
    """Scores = energy at 440 Hz, 1000 Hz and 3000 Hz: separates pure tones of the first two perfectly."""
    t = np.arange(clip_samples) / sample_rate
    basis = np.stack([np.sin(2 * np.pi * f * t) for f in (440.0, 1000.0, 3000.0)])
    return lambda x: np.clip(4 * np.abs(x @ basis.T) / clip_samples, 0, 1).astype(np.float32)
'''


def test_perfect_separation_and_a_class_without_positives(tmp_path, capsys):
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    (tmp_path / "wavs").mkdir()
    rows = []
    for i in range(24):
        f, label = (440.0, "A") if i % 2 else (1000.0, "B")
        clip = 0.5 * np.sin(2 * np.pi * f * t) + 0.01 * rng.normal(size=t.size)
        write_wav_pcm16(tmp_path / "wavs" / f"{i}.wav", clip.astype(np.float32), sample_rate=16000)
        rows.append(f"{i}.wav,{label},{'x' if i % 3 else 'y'}")
    (tmp_path / "clips.csv").write_text("file,labels,group\n" + "\n".join(rows) + "\n")
    (tmp_path / "labels.txt").write_text("A\nB\nC\n")  # C: no positives
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "run.toml").write_text('''
[model]
source = "python"
entry = "model.py:make_forward"
class_labels = "labels.txt"
clip_seconds = 1.0
[dataset]
kind = "folder"
wav_dir = "wavs"
csv = "clips.csv"
class_labels = "labels.txt"
[metrics]
bootstrap_resamples = 30
[robustness]
enabled = true
n_clips = 2
iterations = 2
k = 3
init_eval = 5
max_eval = 10
workers = 1
[bias]
min_group_size = 4
min_positives = 2
''')
    assert main(["run", "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "mAP 1.000" in out and "d' undefined (infinite: mean AUC = 1" in out
    doc = json.loads((tmp_path / "out" / "factsheet.json").read_text())
    perf = doc["performance"]
    assert perf["d_prime"] is None and perf["mean_auc"] == 1.0 and perf["n_classes_evaluated"] == 2
    assert [c["evaluable"] for c in perf["per_class"]] == [True, True, False]
    assert (tmp_path / "out" / "factsheet.html").is_file()
    md = (tmp_path / "out" / "factsheet.md").read_text()
    perf_md = md.split("## Performance Metrics", 1)[1].split("\n## ", 1)[0]
    assert "\u2014" not in perf_md  # an undefined value is said so, not dashed
    assert "| C |  | 0 | excluded: undefined (no positive or no negative clip) |" in md
    assert "d-prime | undefined |" in md or "| d-prime | undefined" in md
