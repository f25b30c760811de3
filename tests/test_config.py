"""Config validation: every bad value is one InputError naming file, key and value."""

from pathlib import Path

import pytest

from factsheet.config import load_config
from factsheet.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_demo_config_loads():
    cfg = load_config(REPO / "configs" / "demo.toml")
    assert cfg.dataset.kind == "synthetic" and cfg.model.source == "default"
    assert cfg.to_dict()["dataset"]["n_clips"] == cfg.dataset.n_clips


def test_defaults_when_empty(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    assert cfg.metrics.bootstrap_resamples == 1000 and cfg.model.wrapper == "blackbox"


@pytest.mark.parametrize("text, field, value", [
    ("[dataset]\nn_clipz = 3\n", "dataset.n_clipz", None),
    ("[datasett]\n", "[datasett]", None),
    ("[dataset]\nn_clips = -3\n", "dataset.n_clips", -3),
    ("[dataset]\nn_clips = 'ten'\n", "dataset.n_clips", "ten"),
    ("[dataset]\nn_clips = true\n", "dataset.n_clips", True),
    ("[dataset]\nkind = 'cloud'\n", "dataset.kind", "cloud"),
    ("[model]\nwrapper = 'keras'\n", "model.wrapper", "keras"),
    ("[model]\nsource = 'keras'\n", "model.path", None),
    ("[metrics]\nconfidence = 1.5\n", "metrics.confidence", 1.5),
    ("[model]\nclip_seconds = 0.5\n", "model.clip_seconds", 0.5),
    ("[dataset]\nmin_seconds = 3.0\nmax_seconds = 2.0\n", "dataset.min_seconds", 3.0),
])
def test_bad_values_name_key_and_value(tmp_path, text, field, value):
    with pytest.raises(InputError) as e:
        load_config(write(tmp_path, text))
    assert e.value.field == field
    assert e.value.value == value
    line = e.value.line()
    assert "c.toml" in line and field in line and "\n" not in line


def test_missing_files_are_named(tmp_path):
    p = write(tmp_path, "[model]\nsource = 'keras'\npath = 'nope.keras'\nclass_labels = 'l.csv'\nclip_seconds = 1.0\n")
    with pytest.raises(InputError) as e:
        load_config(p)
    assert e.value.field == "model.path" and "nope.keras" in e.value.line() and "not found" in e.value.line()
    p = write(tmp_path, "[dataset]\nkind = 'folder'\nwav_dir = 'w'\ncsv = 'c.csv'\nclass_labels = 'l.csv'\n")
    with pytest.raises(InputError) as e:
        load_config(p)
    assert e.value.field == "dataset.wav_dir"


def test_relative_paths_resolve_against_config_folder(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "c.csv").write_text("file,labels\n")
    (tmp_path / "l.csv").write_text("index,mid,display_name\n0,/m/a,A\n")
    p = write(tmp_path, "[dataset]\nkind = 'folder'\nwav_dir = 'w'\ncsv = 'c.csv'\nclass_labels = 'l.csv'\n")
    cfg = load_config(p)
    assert cfg.dataset.wav_dir == tmp_path / "w"


def test_toml_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="invalid TOML"):
        load_config(write(tmp_path, "[dataset\n"))
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize("section, field, value", [
    ("RobustnessConfig", "iterations", 0), ("RobustnessConfig", "blend_steps", 0), ("BiasConfig", "tolerance", -0.1),
    ("MetricsConfig", "confidence", 1.0), ("ModelConfig", "concurrency", 0), ("DatasetConfig", "n_clips", 0),
])
def test_each_section_validates_itself(section, field, value):
    """ART-style: every settings class checks its own values (the loader only names the file)."""
    import factsheet.config as config

    seen = []

    def bad(where, got, reason):
        seen.append((where, got, reason))
        raise ValueError(where)

    cls = getattr(config, section)
    with pytest.raises(ValueError):
        cls(**{field: value}).check_params(bad)
    assert seen[0][0].endswith(f".{field}") and seen[0][1] == value
    cls().check_params(bad)  # the defaults are valid
