"""The wheel carries templates, schema and the default model; an installed copy finds its templates."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (whl,) = out.glob("audio_factsheet-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for need in ("factsheet/_templates/factsheet.html.j2", "factsheet/_templates/factsheet.md.j2",
                 "factsheet/_templates/sections/performance.md.j2", "factsheet/_templates/_macros.html.j2",
                 "factsheet/schema/factsheet-1.2.0.schema.json", "factsheet/schema/sections/bias.json",
                 "factsheet/sections/conditions.py", "factsheet/models/default/demo_classifier.keras",
                 "factsheet/models/default/demo_classifier.json",
                 "factsheet/models/default/class_labels_indices.csv", "attacks/__init__.py",
                 "factsheet/models/sources/__init__.py", "factsheet/models/sources/onnx_file.py",
                 "factsheet/models/max_audio.py", "factsheet/models/http_model.py", "factsheet/init_config.py"):
        assert need in names, need


def test_installed_wheel_finds_templates_and_schema(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import factsheet.render as r, factsheet.document as d; "
            "print(r.template_dir()); print(d.load_schema()['$id'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tdir, schema_id = proc.stdout.split()
    assert Path(tdir) == target / "factsheet" / "_templates"
    assert schema_id == "urn:audio-factsheet:factsheet:1.2.0"
