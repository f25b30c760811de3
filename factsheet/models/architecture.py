"""The demo classifier: two stages like the MAX Audio Classifier, in one graph.

Stage 1 (embedding): log-mel (VGGish parameters) -> small strided CNN per 0.96 s example ->
128-d embedding in [0, 1] (sigmoid). Stage 2 (classifier): dense layer + attention pooling
over the embedding sequence -> ``n_classes`` sigmoid scores.
"""

from __future__ import annotations

import keras

from factsheet.models.layers import AttentionPooling, ExampleFramer, LogMelFrontend, VGGISH


def build_embedding_cnn(*, embedding_dim: int = 128) -> keras.Model:
    """One example (96, 64, 1) log-mel -> (embedding_dim,) in [0, 1]."""
    x_in = keras.Input(shape=(VGGISH["frames_per_example"], VGGISH["n_mels"], 1), name="example")
    x = keras.layers.BatchNormalization(name="input_norm")(x_in)
    for i, filters in enumerate((16, 32, 64, 64)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"conv{i + 1}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(embedding_dim, activation="sigmoid", name="embedding")(x)
    return keras.Model(x_in, x, name="embedding_cnn")


def build_classifier(*, n_classes: int, sample_rate: int = 16000, embedding_dim: int = 128,
                     hidden_units: int = 128, dropout: float = 0.2) -> keras.Model:
    """Raw waveform (batch, n_samples) float32 in [-1, 1] -> (batch, n_classes) sigmoid scores.

    Any ``n_samples >= 15 600`` works; each 0.96 s gives one embedding.
    """
    wave = keras.Input(shape=(None,), dtype="float32", name="waveform")
    logmel = LogMelFrontend(sample_rate=sample_rate, name="logmel")(wave)
    examples = ExampleFramer(frames_per_example=VGGISH["frames_per_example"], name="examples")(logmel)
    embeddings = keras.layers.TimeDistributed(build_embedding_cnn(embedding_dim=embedding_dim),
                                              name="embeddings")(examples)
    h = keras.layers.Dense(hidden_units, activation="relu", name="hidden")(embeddings)
    h = keras.layers.Dropout(dropout, name="dropout")(h)
    scores = AttentionPooling(n_classes=n_classes, name="scores")(h)
    return keras.Model(wave, scores, name="demo_audio_classifier")
