"""Layering: the attack and the model sources never import the CLI (no import cycle), checked in a fresh process."""

import subprocess
import sys


def test_attacks_and_models_do_not_import_the_cli():
    code = ("import sys, attacks.robustness, attacks.runner, factsheet.pipeline, factsheet.models.sources, "
            "factsheet.models.sources.onnx_file, factsheet.models.sources.tflite_file, factsheet.gate, factsheet.bias; "
            "print('factsheet.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_no_module_refers_to_the_cli_even_inside_functions():
    """Imports inside functions count too: the old attacks.runner -> factsheet.cli cycle hid in one."""
    import re
    from pathlib import Path

    imports_cli = re.compile(r"^\s*(from\s+factsheet\.cli\s+import|import\s+factsheet\.cli\b)", re.M)
    repo = Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(repo)) for d in ("factsheet", "attacks") for p in (repo / d).rglob("*.py")
                 if p.name not in ("cli.py", "__main__.py") and imports_cli.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
