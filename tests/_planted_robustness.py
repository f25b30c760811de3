"""A planted robustness bias: a model that is easier to fool on one group of clips, and its twin that is not.

The clips are pure tones of class A (440 Hz) or B (880 Hz) in faint noise, 0.5 s at 8 kHz; the
"marked" group carries a faint 3 kHz marker tone, the "plain" group one at 2.5 kHz (the group's
identity is in the audio, since the model only sees audio). The model scores A and B by the tones'
amplitudes and a constant third class ("other"). The planted model squeezes the marked clips' A and
B scores towards 0 (x 0.35) while "other" stays put, so on marked clips the decision boundary is
closer: a smaller perturbation changes the top-1 class. The fair model scores every clip alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factsheet.audio import write_wav_pcm16

SAMPLE_RATE = 8000
CLIP_SAMPLES = 4000

MODEL = '''
import numpy as np

TONES = (440.0, 880.0)
MARKER = 3000.0
OTHER = 4.0  # the constant score of class "other"


def _basis(frequency, sample_rate, n):
    t = np.arange(n) / sample_rate
    b = np.stack([np.sin(2 * np.pi * frequency * t), np.cos(2 * np.pi * frequency * t)])
    return b / np.linalg.norm(b, axis=1, keepdims=True)


def _forward(sample_rate, clip_samples, squeeze):
    bases = [_basis(f, sample_rate, clip_samples) for f in TONES + (MARKER,)]

    def forward(x):
        x = np.asarray(x, np.float64)
        a, b, m = (np.sqrt(((x @ basis.T) ** 2).sum(axis=1)) for basis in bases)
        gain = 1.0 - squeeze * np.clip((m - 3.0) / 3.0, 0.0, 1.0)  # marked clips: m about 9
        return np.stack([gain * a, gain * b, np.full(len(x), OTHER)], axis=1).astype(np.float32)

    return forward


def make_planted(sample_rate, clip_samples):
    """Marked clips' class scores squeezed towards 0 (x 0.35): they are fooled by smaller perturbations."""
    return _forward(sample_rate, clip_samples, 0.65)


def make_fair(sample_rate, clip_samples):
    """Every clip scored alike."""
    return _forward(sample_rate, clip_samples, 0.0)
'''

CONFIG = '''
[model]
source = "python"
entry = "model.py:{entry}"
class_labels = "labels.txt"
sample_rate = {rate}
clip_seconds = 0.5
output = "logits-softmax"
batch_size = 256
[dataset]
kind = "folder"
wav_dir = "wavs"
csv = "clips.csv"
class_labels = "labels.txt"
[metrics]
bootstrap_resamples = 500
seed = {seed}
[robustness]
enabled = true
norms = ["l2"]
n_clips = {n_attacked}
iterations = 4
k = 5
init_eval = 10
max_eval = 100
mode = "fast"
seed = {seed}
workers = 1
stratify_by = ["marker"]
min_per_group = {min_per_group}
percentiles = [25, 50]
[bias]
columns = ["marker"]
condition_columns = ["marker"]
min_group_size = 4
min_positives = 2
'''


def write_case(folder: Path, *, seed: int, planted: bool, n_clips: int = 48, n_attacked: int = 32,
               min_per_group: int = 16) -> Path:
    """Write clips, labels, the model and a config into ``folder``; return the config's path.

    Half the clips are marked; classes alternate. Amplitudes and noise are drawn from ``seed``,
    which also seeds the attack and the bootstrap.
    """
    rng = np.random.default_rng([seed, 77])
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_clips):
        label, freq = ("A", 440.0) if i % 2 == 0 else ("B", 880.0)
        marked = (i // 2) % 2 == 0
        clip = rng.uniform(0.3, 0.35) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
        # every clip carries a faint marker tone, 3 kHz on marked clips, 2.5 kHz on plain ones: the groups differ
        # only in what the planted model reads, so for the fair model they are alike (a true null)
        marker = 3000.0 if marked else 2500.0
        clip += 0.2 * np.sin(2 * np.pi * marker * t + rng.uniform(0, 2 * np.pi))
        clip += 0.01 * rng.normal(size=t.size)
        write_wav_pcm16(folder / "wavs" / f"c{i:03d}.wav", clip.astype(np.float32), sample_rate=SAMPLE_RATE)
        rows.append(f"c{i:03d}.wav,{label},{'marked' if marked else 'plain'}")
    (folder / "clips.csv").write_text("file,labels,marker\n" + "\n".join(rows) + "\n")
    (folder / "labels.txt").write_text("A\nB\nother\n")
    (folder / "model.py").write_text(MODEL)
    path = folder / "run.toml"
    path.write_text(CONFIG.format(entry="make_planted" if planted else "make_fair", rate=SAMPLE_RATE, seed=seed,
                                  n_attacked=n_attacked, min_per_group=min_per_group))
    return path
