"""Re-run a stored FactSheet from its own provenance and say whether every number comes out the same.

An auditor holding only ``factsheet.json`` can check it: the resolved configuration is in
``provenance.config``, the model and data are identified by their sha256, and the run is
deterministic for a given config and seed. :func:`reproduce` validates the stored JSON, rebuilds
the config from it, runs the pipeline into a fresh folder (never reusing a stored attack run),
and lists every value that differs.

Provenance fields that describe *when* and *where* a run happened (times, timings, commit,
platform, library versions, the run store, the config file's path and hash) are not results and
are left out of the comparison; :func:`context` reports how they differ.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from factsheet.errors import InputError

# provenance.<key> that record circumstances, not results
CIRCUMSTANCES = ("started_at", "finished_at", "timings_s", "run_store", "git_commit", "git_dirty", "platform",
                 "libraries", "config_path", "config_sha256", "model_requests")
# model.runtime.<key> that name library versions (circumstances too; the model's bytes are compared by sha256)
RUNTIME_CIRCUMSTANCES = ("runtime_version", "keras_version")


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()  # the value on the side of a difference where the key is absent


@dataclass
class Reproduction:
    """The outcome of :func:`reproduce`."""

    stored: dict
    new: dict
    differences: list[tuple[str, object, object]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # fields only the new run writes (the stored one predates them)
    n_compared: int = 0
    written: dict = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.differences


def results_only(doc: dict) -> dict:
    """A copy of a FactSheet without the provenance fields in :data:`CIRCUMSTANCES` and without ``gate``
    (the verdict of a policy given on the command line, not a result of the configuration), and without
    ``provenance.config.execution`` (the executor the run used)."""
    out = {k: v for k, v in doc.items() if k != "gate"}
    out["provenance"] = {k: v for k, v in (doc.get("provenance") or {}).items() if k not in CIRCUMSTANCES}
    config = out["provenance"].get("config")
    if isinstance(config, dict) and "execution" in config:  # where it ran (local, processes, Ray), never a result
        out["provenance"]["config"] = {k: v for k, v in config.items() if k != "execution"}
    runtime = (doc.get("model") or {}).get("runtime")
    if isinstance(runtime, dict):
        out["model"] = dict(doc["model"], runtime={k: v for k, v in runtime.items() if k not in RUNTIME_CIRCUMSTANCES})
    return out


def differences(stored, new, *, rtol: float = 0.0, path: str = "") -> tuple[list[tuple[str, object, object]], int]:
    """Every leaf where two JSON values differ, and how many leaves were compared.

    Parameters
    ----------
    stored, new : JSON values (dict, list, str, number, bool or None)
    rtol : float
        Numbers ``a`` and ``b`` count as equal when ``|a - b| <= rtol * max(|a|, |b|)``; 0 means
        exactly equal. Booleans, strings and ``None`` are always compared exactly.
    path : str
        JSON path of ``stored`` (dots and ``[i]``), for the report.

    Returns
    -------
    diffs : list of (path, stored value, new value)
        In document order; a key present on one side only is a difference with :data:`MISSING` on
        the other side.
    n_leaves : int
        Leaves compared.
    """
    if isinstance(stored, dict) and isinstance(new, dict):
        out, n = [], 0
        for key in list(stored) + [k for k in new if k not in stored]:
            where = f"{path}.{key}" if path else str(key)
            if key not in stored or key not in new:
                out.append((where, stored.get(key, MISSING), new.get(key, MISSING)))
                n += 1
                continue
            d, m = differences(stored[key], new[key], rtol=rtol, path=where)
            out += d
            n += m
        return out, n
    if isinstance(stored, list) and isinstance(new, list):
        if len(stored) != len(new):
            return [(f"{path} (length)", len(stored), len(new))], 1
        out, n = [], 0
        for i, (a, b) in enumerate(zip(stored, new)):
            d, m = differences(a, b, rtol=rtol, path=f"{path}[{i}]")
            out += d
            n += m
        return out, n
    if _is_number(stored) and _is_number(new):
        equal = stored == new or abs(stored - new) <= rtol * max(abs(stored), abs(new))
        return ([] if equal else [(path, stored, new)]), 1
    return ([] if (type(stored) is type(new) and stored == new) else [(path, stored, new)]), 1


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def context(stored: dict, new: dict) -> list[str]:
    """One line per circumstance that differs between the stored run and this one (commit, libraries...)."""
    a, b = stored.get("provenance") or {}, new.get("provenance") or {}
    lines = []
    if a.get("git_commit") != b.get("git_commit") or a.get("git_dirty") != b.get("git_dirty"):
        lines.append(f"commit: stored {a.get('git_commit') or 'unknown'}{' (dirty)' if a.get('git_dirty') else ''}, "
                     f"here {b.get('git_commit') or 'unknown'}{' (dirty)' if b.get('git_dirty') else ''}")
    libs_a, libs_b = a.get("libraries") or {}, b.get("libraries") or {}
    changed = [f"{k} {libs_a.get(k, '-')} -> {libs_b.get(k, '-')}" for k in sorted(set(libs_a) | set(libs_b))
               if libs_a.get(k) != libs_b.get(k)]
    if changed:
        lines.append("libraries: " + ", ".join(changed))
    if a.get("platform") != b.get("platform"):
        lines.append(f"platform: stored {a.get('platform')}, here {b.get('platform')}")
    return lines


def _without_defaults(values: dict, cls) -> dict:
    """A recorded config table without the keys that hold ``cls``'s default value."""
    from factsheet.config import jsonable

    defaults = {f.name: jsonable(f.default) for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    return {k: v for k, v in values.items() if k not in defaults or defaults[k] != v}


def config_from_factsheet(doc: dict, *, source: str):
    """The :class:`~factsheet.config.RunConfig` recorded in ``provenance.config``, validated again.

    Relative paths in it are read from the current folder, as they were written.
    """
    from factsheet.config import SECTIONS, ShiftDatasetConfig, config_from_dict

    raw = (doc.get("provenance") or {}).get("config")
    if not isinstance(raw, dict):
        raise InputError(source=source, field="provenance.config", reason="missing: nothing to re-run")
    # The record holds every setting, defaults included; a default (e.g. an unset path, None, or
    # bias.columns = [] for "every column") is left out so that it is applied as a default again.
    raw = {section: (_without_defaults(values, SECTIONS[section]) if section in SECTIONS and isinstance(values, dict)
                     else values) for section, values in raw.items()}
    shift = raw.get("domain_shift")
    if isinstance(shift, dict) and isinstance(shift.get("datasets"), list):  # [[domain_shift.datasets]] tables
        shift["datasets"] = [_without_defaults(d, ShiftDatasetConfig) if isinstance(d, dict) else d
                             for d in shift["datasets"]]
    cfg = config_from_dict(raw, source=f"{source}: provenance.config", base_dir=Path.cwd())
    return dataclasses.replace(cfg, path=None)


def reproduce(json_path: str | Path, out_dir: str | Path, *, rtol: float = 0.0,
              workers: int | None = None, execution=None, progress: bool = False) -> Reproduction:
    """Re-run the FactSheet at ``json_path`` from its provenance into ``out_dir`` and compare.

    Parameters
    ----------
    json_path : str or Path
        A stored ``factsheet.json`` (validated against the schema first).
    out_dir : str or Path
        Where the new report goes. Must not be the stored report's folder or hold an attack run
        store, so that nothing stored is reused.
    rtol : float
        Relative tolerance for numbers (see :func:`differences`); 0: exact.
    workers : int, optional
        Attack worker processes (results do not depend on it).
    execution : factsheet.config.ExecutionConfig, optional
        Run on this executor instead of the recorded one (results do not depend on it).

    Raises
    ------
    InputError
        Unreadable or invalid JSON, a config in it that no longer validates, or an unusable ``out_dir``.
    """
    from factsheet.document import check_against_schema, load_factsheet
    from factsheet.pipeline import run
    from factsheet.render import write_report

    json_path, out_dir = Path(json_path), Path(out_dir)
    stored = load_factsheet(json_path)
    check_against_schema(stored, source=str(json_path))
    if out_dir.resolve() == json_path.parent.resolve():
        raise InputError(source="--out", value=str(out_dir), reason="is the stored report's folder; pick a new one")
    if (out_dir / "attack_runs.sqlite").exists():
        raise InputError(source="--out", value=str(out_dir),
                         reason="holds an attack run store that would be reused; pick an empty folder")
    if not (math.isfinite(rtol) and rtol >= 0):
        raise InputError(source="--rtol", value=rtol, reason="must be a finite number >= 0")
    cfg = config_from_factsheet(stored, source=str(json_path))
    if execution is not None:
        cfg = dataclasses.replace(cfg, execution=execution)
    sheet, artefacts = run(cfg, out_dir=out_dir, workers=workers, progress=progress)
    written = write_report(out_dir, sheet, artefacts)
    new = json.loads(written["factsheet.json"].read_text(encoding="utf-8"))  # compare file with file
    diffs, n = differences(results_only(stored), results_only(new), rtol=rtol)
    added = [path for path, old, _ in diffs if old is MISSING]
    diffs = [d for d in diffs if d[1] is not MISSING]
    return Reproduction(stored=stored, new=new, differences=diffs, added=added, n_compared=n, written=written)
