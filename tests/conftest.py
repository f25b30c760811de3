import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import atexit
import shutil
import tempfile

# Synthetic datasets generated once per test session (and its subprocesses, which inherit the
# variable) are read back from here instead of synthesised again (factsheet.datasets.synthetic).
if "FACTSHEET_SYNTHETIC_CACHE" not in os.environ:
    _SYNTHETIC_CACHE = tempfile.mkdtemp(prefix="factsheet-synthetic-")
    os.environ["FACTSHEET_SYNTHETIC_CACHE"] = _SYNTHETIC_CACHE
    atexit.register(shutil.rmtree, _SYNTHETIC_CACHE, ignore_errors=True)

import warnings

warnings.filterwarnings("ignore", message="PyTorch not found")


import json
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory):
    """The demo config (configs/demo.toml) at a tenth of its size: every section evaluated, attack (with its
    voice-type stratification, 2 clips per voice type), corruption suite, natural shift and explanation
    (one clip per class) included.

    Returns the report folder and the FactSheet dict. About 15 s.
    """
    from factsheet.config import load_config
    from factsheet.pipeline import run
    from factsheet.render import write_report

    cfg = load_config(REPO / "configs" / "demo.toml")
    cfg = replace(cfg, dataset=replace(cfg.dataset, n_clips=360),
                  metrics=replace(cfg.metrics, bootstrap_resamples=100),
                  robustness=replace(cfg.robustness, n_clips=6, min_per_group=2, workers=1),
                  bias=replace(cfg.bias, min_group_size=10, min_positives=5),
                  domain_shift=replace(cfg.domain_shift, n_clips=48, severities=(1, 3, 5), min_per_group=8,
                                       datasets=tuple(replace(d, n_clips=240) for d in cfg.domain_shift.datasets)),
                  explanation=replace(cfg.explanation, n_per_class=1, n_checked=4))
    out = tmp_path_factory.mktemp("demo_small")
    sheet, artefacts = run(cfg, out_dir=out)
    write_report(out, sheet, artefacts)
    doc = json.loads((out / "factsheet.json").read_text())
    assert doc["robustness"]["status"] == "evaluated" and doc["bias"]["status"] == "evaluated"
    assert doc["domain_shift"]["status"] == "evaluated" and doc["explanation"]["status"] == "evaluated"
    return out, doc


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray (2 CPUs, no dashboard) shared by every Ray test of the session, shut down at its end.

    Skips where Ray is not installed (the README's ``make test``); ``.ci/run`` installs it. Workers get
    the repository and ``tests/`` on their path, so they import this checkout and the test jobs.
    """
    ray = pytest.importorskip("ray")
    path = os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}})
    yield ray
    ray.shutdown()
