"""Command line: ``factsheet run --config CONFIG.toml --out DIR`` (also ``python -m factsheet``).

Bad input (config, WAV, CSV, model) prints one line naming the file, field and value and
exits with code 2; no traceback, and no earlier report is overwritten.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from factsheet.models.tf_runtime import import_tensorflow_quietly  # noqa: F401  (also the public name here)

EPILOG = """\
commands:
  run        evaluate a model on a dataset and write factsheet.json / .html / .md,
             predictions.csv and plots/ into --out
  gate       check a FactSheet against a policy of thresholds (exit 1 when a gate fails)
  compare    deltas between two FactSheets (metrics, classes, robustness, disparities)
  render     re-render factsheet.html / .md from a stored factsheet.json (runs nothing)
  reproduce  re-run a stored factsheet.json from its own provenance and list every
             value that differs (exit 1 when one does)
  schema     print the FactSheet JSON Schema (--markdown: its field-by-field reference)
  init       write a starting config for a model (file, folder or URL) and a folder of audio files
  import-max convert the MAX Audio Classifier's three asset files into one .keras file (safe_mode)

exit codes: 0 success, 1 a gate failed (gate) or a value differs (reproduce), 2 bad input (one line on stderr naming
file, field and value).

The config is TOML with sections [factsheet] (prose of the descriptive sections),
[model] (source = "default" | "keras" | "savedmodel" | "onnx" | "tflite" | "python" |
"max" | "http", path, class_labels, sample_rate, clip_seconds, wrapper = "blackbox" |
"tensorflow", batch_size, output = "probabilities" | "logits-sigmoid" | "logits-softmax",
pooling = "mean" | "max", output_name, signature, threads, entry, assets, url,
timeout_seconds, max_retries, concurrency, max_requests), [dataset] (kind = "synthetic" | "folder";
synthetic: split, n_clips, seed, min_seconds, max_seconds; folder: wav_dir, csv,
class_labels, file_column, labels_column, label_separator), [metrics]
(bootstrap_resamples, confidence, seed), [robustness] (enabled, norms, iterations, k,
n_clips, init_eval, max_eval, init_size, batch_size, seed, max_queries_per_clip,
max_seconds_per_clip, mode = "exact" | "fast", targeted, init_candidates, blend_steps, percentiles, workers,
stratify_by, min_per_group, exclude_values) and [bias]
(enabled, columns, intersections, condition_columns, exclude_values, min_group_size,
min_positives, tolerance, correction = "holm" | "bh", worst_classes) and [execution] (executor =
"local" | "processes" | "ray", ray_address, max_retries, stages). Relative paths are
relative to the config file.
See configs/demo.toml and the README.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="factsheet", description="FactSheets for audio classifiers: performance, "
                                "bias and robustness, computed and traceable.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from factsheet import __version__

    p.add_argument("--version", action="version", version=f"audio-factsheet {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="compute a FactSheet", formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Evaluate the configured model on the configured dataset and write the "
                                     "FactSheet (JSON, HTML, Markdown), per-clip predictions and plots.")
    run.add_argument("--config", required=True, type=Path, help="run configuration (TOML)")
    run.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="attack worker processes (default: robustness.workers, 0 there = one per core); "
                          "results do not depend on it")
    _executor_arguments(run)
    run.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    run.add_argument("--policy", type=Path, default=None, metavar="FILE",
                     help="also gate the FactSheet with this policy (as `factsheet gate`): the verdict is stored in "
                          "the JSON and shown in the report's Summary; exit code 1 when a gate fails")
    ren = sub.add_parser("render", help="re-render HTML and Markdown from a stored FactSheet JSON",
                         description="Re-render factsheet.html and factsheet.md from FACTSHEET.json and the plots "
                                     "beside it, without re-running anything.")
    ren.add_argument("factsheet", type=Path, metavar="FACTSHEET.json")
    ren.add_argument("--out", required=True, type=Path, help="output folder")
    rep = sub.add_parser("reproduce", help="re-run a stored FactSheet from its provenance and compare",
                         description="Rebuild the run configuration recorded in FACTSHEET.json "
                                     "(provenance.config), run it into --out (a fresh folder: no stored attack "
                                     "result is reused) and list every value of the new FactSheet that differs "
                                     "from the stored one. Times, timings, commit, platform, library versions and "
                                     "the config file's path and hash are circumstances, not results: they are "
                                     "reported, not compared.",
                         epilog="exit codes: 0 every value reproduced, 1 some value differs, 2 bad input.")
    rep.add_argument("factsheet", type=Path, metavar="FACTSHEET.json")
    rep.add_argument("--out", required=True, type=Path, help="output folder for the new report (not the stored one)")
    rep.add_argument("--rtol", type=float, default=0.0,
                     help="relative tolerance for numbers (default 0: bit-identical; e.g. 1e-6 across CPUs, "
                          "whose math kernels may differ in the last bits)")
    rep.add_argument("--workers", type=int, default=None, metavar="N", help="attack worker processes")
    _executor_arguments(rep)
    rep.add_argument("--quiet", action="store_true", help="no progress bars")
    schema = sub.add_parser("schema", help="print the FactSheet JSON Schema",
                            description="Print the FactSheet JSON Schema (JSON), or with --markdown its "
                                        "field-by-field reference (docs/schema.md).")
    schema.add_argument("--markdown", action="store_true",
                        help="print the schema as a Markdown reference: one table per object with each field's "
                             "type, required flag, unit and description")
    init = sub.add_parser("init", help="write a starting config for a model and a folder of audio files",
                          description="Recognise the model's source from --model (a .keras/.h5/.onnx/.tflite file, "
                                      "a SavedModel or MAX asset folder, an http(s):// URL), read its input and "
                                      "output shapes, list the audio files of --wavs into a clips CSV (labels from "
                                      "class sub-folders), and write a config whose keys still to fill or check "
                                      "are named in comments. Existing files are not overwritten.")
    init.add_argument("--model", required=True, help="model file, folder or URL")
    init.add_argument("--wavs", required=True, type=Path, help="folder of audio files (searched recursively)")
    init.add_argument("--config", type=Path, default=Path("factsheet.toml"),
                      help="config to write (default factsheet.toml); the clips CSV goes beside it as clips.csv")
    imp = sub.add_parser("import-max", help="convert the MAX Audio Classifier assets into one .keras file",
                         description="Verify the MAX Audio Classifier's assets (vggish_model.ckpt, "
                                     "vggish_pca_params.npz, classifier_model.h5) against sha512sums.txt when "
                                     "present, rebuild the whole model in Keras 3 (no Lambda, no pickle) and save "
                                     "it as a .keras file that loads with safe_mode (source = 'max', path = ...).")
    imp.add_argument("assets", type=Path, metavar="ASSETS_DIR")
    imp.add_argument("--out", required=True, type=Path, metavar="MAX.keras", help="the .keras file to write")
    gate = sub.add_parser("gate", help="check a FactSheet against a policy of thresholds (for CI)",
                          formatter_class=argparse.RawDescriptionHelpFormatter,
                          description="Evaluate every gate of a policy (TOML) on a FactSheet and print a table "
                                      "(gate, path, value, threshold, outcome). See docs/gating.md.",
                          epilog="exit codes: 0 every gate passed (or only warned), 1 a gate failed, "
                                 "2 bad input (unknown path, malformed policy, missing --baseline: one line on "
                                 "stderr).")
    gate.add_argument("factsheet", type=Path, metavar="FACTSHEET.json", help="the FactSheet to check")
    gate.add_argument("--policy", required=True, type=Path, help="gating policy (TOML), e.g. policies/example.toml")
    gate.add_argument("--baseline", type=Path, default=None, metavar="OLD.json",
                      help="baseline FactSheet for the policy's baseline gates (max_drop, ...)")
    gate.add_argument("--junit", type=Path, default=None, metavar="FILE.xml",
                      help="also write JUnit XML, one testcase per gate")
    gate.add_argument("--summary", type=Path, default=None, metavar="FILE.md",
                      help="also write a Markdown summary (for a pull-request comment)")
    compare = sub.add_parser("compare", help="compare two FactSheets: metric, class-wise, robustness and "
                                             "disparity deltas",
                             formatter_class=argparse.RawDescriptionHelpFormatter,
                             description="Print a Markdown comparison of OLD and NEW; with --out also write "
                                         "compare.md and compare.html there.",
                             epilog="exit codes: 0 success, 2 bad input (not a FactSheet, unreadable file).")
    compare.add_argument("old", type=Path, metavar="OLD.json", help="the earlier (baseline) FactSheet")
    compare.add_argument("new", type=Path, metavar="NEW.json", help="the later FactSheet")
    compare.add_argument("--out", type=Path, default=None, metavar="DIR",
                         help="write compare.md and compare.html into DIR (created if missing)")
    return p


def _executor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=("local", "processes", "ray"), default=None,
                   help="where the attack's, the corruption cells' and the occlusion maps' tasks run (default: [execution] executor, else processes): in this "
                        "process, a local process pool, or Ray actors (pip install 'audio-factsheet[ray]'); "
                        "results do not depend on it")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="with --executor ray: 'local' (start Ray here; default), 'auto' (this machine's cluster), "
                        "'ray://host:port' (Ray Client) or 'host:port' (default: [execution] ray_address)")


def with_executor(cfg, args):
    """``cfg`` with ``--executor`` / ``--ray-address`` applied, checked before any work is done.

    Raises
    ------
    InputError
        A bad ``--ray-address``, or the ``ray`` executor without Ray installed (one line).
    """
    import dataclasses

    from factsheet.errors import InputError
    from factsheet.executors import ExecutorSettings, check_executor, check_ray_address

    execution = cfg.execution
    if args.ray_address is not None:
        why = check_ray_address(args.ray_address)
        if why is not None:
            raise InputError(source="--ray-address", value=args.ray_address, reason=why)
        execution = dataclasses.replace(execution, ray_address=args.ray_address)
    if args.executor is not None:
        execution = dataclasses.replace(execution, executor=args.executor)
    source = "--executor" if args.executor is not None else f"{cfg.path or 'config'}: execution.executor"
    check_executor(ExecutorSettings(kind=execution.executor), source=source)
    return dataclasses.replace(cfg, execution=execution)


def check_out_folder(path: Path) -> None:
    """Refuse an ``--out`` that cannot become a folder, before any work is done (creates nothing).

    Raises
    ------
    InputError
        ``path`` is an existing file, or its nearest existing ancestor is not a writable folder.
    """
    from factsheet.errors import InputError

    if path.exists():
        if not path.is_dir():
            raise InputError(source="--out", value=str(path), reason="exists and is not a folder")
        parent = path
    else:
        parent = next((p for p in path.absolute().parents if p.exists()), Path("/"))
        if not parent.is_dir():
            raise InputError(source="--out", value=str(path), reason=f"{parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(source="--out", value=str(path), reason=f"{parent} is not writable")


def cmd_run(args) -> int:
    from factsheet.config import load_config
    from factsheet.errors import InputError
    from factsheet.pipeline import run
    from factsheet.render import write_report

    t0 = time.perf_counter()
    cfg = load_config(args.config)
    if args.workers is not None and args.workers < 1:
        raise InputError(source="--workers", value=args.workers, reason="must be >= 1")
    cfg = with_executor(cfg, args)
    policy = None
    if args.policy is not None:  # read and checked before the run: a bad policy costs nothing
        from factsheet.gate import load_policy

        policy = load_policy(args.policy)
    import_tensorflow_quietly()  # after the config and policy checks: a bad key costs no TensorFlow start-up
    sheet, artefacts = run(cfg, out_dir=args.out, workers=args.workers, progress=not args.quiet)
    gate_report = None
    if policy is not None:
        gate_report = _gate_sheet(sheet, policy, source=str(Path(args.out) / "factsheet.json"))
    written = write_report(args.out, sheet, artefacts)
    failed = getattr(sheet.robustness, "failed_tasks", None)
    if failed:  # stated in the FactSheet too; said here even with --quiet
        print(f"warning: {len(failed)} attack task(s) failed on every attempt (worker died) and are left out of "
              f"the robustness statistics: {', '.join(f['clip_id'] + '/' + f['norm'] for f in failed)}",
              file=sys.stderr)
    if not args.quiet:
        p = sheet.performance
        none_evaluable = "undefined: no class has both positives and negatives"
        d_why = "infinite: mean AUC = 1, the classes are perfectly separated" if p.mean_auc == 1 else none_evaluable
        print(f"mAP {_shown(p.mAP, why=none_evaluable)}  mean AUC {_shown(p.mean_auc, why=none_evaluable)}  "
              f"d' {_shown(p.d_prime, why=d_why)}  ({p.n_clips} clips, {p.n_classes_evaluated} classes)")
        rob = sheet.robustness
        if rob.status == "evaluated":
            for norm, block in rob.hopskipjump.items():
                med = next((r for r in block["percentiles"] if r["percentile"] == 50.0), None)
                shown = "" if med is None else (
                    f", median {_shown(med['value_int16'], 1, why='infinite: fewer than half the clips fooled')} "
                    f"(16-bit PCM), SNR {_shown(med['snr_db'], 1, why='undefined')} dB")
                print(f"HopSkipJump {norm}: {block['n_success']}/{block['n_attacked']} clips fooled{shown}")
            rs = sheet.provenance.run_store
            print(f"attack: {sheet.provenance.timings_s['robustness']:.1f} s with {rs['workers']} "
                  f"{rs.get('executor', 'processes')} workers "
                  f"({rs['reused_results']} results reused from {rs['store']})")
        for rel in sorted(written):
            print(f"wrote {written[rel]}")
        from factsheet.sections import empty_prose_fields

        _print_completeness(empty_prose_fields(sheet.to_dict()))
        print(f"done in {time.perf_counter() - t0:.1f} s")
    if gate_report is not None:
        from factsheet.gate import render_table

        print(render_table(gate_report), end="")
        return gate_report.exit_code
    return 0


def _gate_sheet(sheet, policy, *, source: str):
    """Evaluate ``policy`` on the FactSheet and store the verdict in it (``gate``); returns the report."""
    from factsheet.gate import evaluate_policy
    from factsheet.sections.gate import gate_record

    report = evaluate_policy(policy=policy, doc=sheet.to_dict(), source=source)
    sheet.sections["gate"] = gate_record(report)
    return report


def _shown(value, digits: int = 3, *, why: str) -> str:
    """A number for the summary line, or "undefined (why)" where the FactSheet holds null."""
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and value == value else f"undefined ({why})"


def cmd_reproduce(args) -> int:
    from factsheet.errors import InputError
    from factsheet.reproduce import context, reproduce

    if args.workers is not None and args.workers < 1:
        raise InputError(source="--workers", value=args.workers, reason="must be >= 1")
    execution = None
    if args.executor is not None or args.ray_address is not None:
        from factsheet.config import RunConfig

        execution = with_executor(RunConfig(), args).execution
    import_tensorflow_quietly()
    result = reproduce(args.factsheet, args.out, rtol=args.rtol, workers=args.workers, execution=execution,
                       progress=not args.quiet)
    for line in context(result.stored, result.new):
        print(f"note: {line}")
    if result.added:
        print(f"note: {len(result.added)} field(s) written by this version that the stored FactSheet predates "
              f"(not compared): {', '.join(result.added[:10])}{' ...' if len(result.added) > 10 else ''}")
    tolerance = "exactly" if args.rtol == 0 else f"within rtol {args.rtol:g}"
    if result.identical:
        print(f"reproduced: all {result.n_compared} values of {args.factsheet} match {tolerance} "
              f"(new report in {args.out})")
        return 0
    print(f"NOT reproduced: {len(result.differences)} of {result.n_compared} values differ ({tolerance}); "
          f"new report in {args.out}")
    for path, old, new in result.differences[:20]:
        print(f"  {path}: stored {_short(old)}, now {_short(new)}")
    if len(result.differences) > 20:
        print(f"  ... and {len(result.differences) - 20} more")
    return 1


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def cmd_render(args) -> int:
    from factsheet.render import rerender
    from factsheet.sections import empty_prose_fields

    written, doc = rerender(args.factsheet, args.out)
    for rel in sorted(written):
        print(f"wrote {written[rel]}")
    _print_completeness(empty_prose_fields(doc))
    return 0


def _print_completeness(empty: list[str]) -> None:
    if empty:
        print(f"completeness: {len(empty)} prose field(s) empty: {', '.join(empty)}")
    else:
        print("completeness: every prose field is filled")


def cmd_schema(args) -> int:
    import json

    from factsheet.document import load_schema

    if args.markdown:
        from factsheet.schema_doc import schema_markdown

        sys.stdout.write(schema_markdown(load_schema()))
        sys.stdout.flush()
        return 0
    print(json.dumps(load_schema(), indent=2))
    return 0


def cmd_init(args) -> int:
    from factsheet.errors import InputError
    from factsheet.init_config import starting_config

    config, clips = args.config, args.config.parent / "clips.csv"
    for p in (config, clips):
        if p.exists():
            raise InputError(source=str(p), reason="exists: not overwritten (choose another --config)")
    if not str(args.model).lower().endswith((".onnx", ".tflite")) and not str(args.model).startswith("http"):
        import_tensorflow_quietly()  # Keras, SavedModel and MAX models are read with TensorFlow
    text, csv_text, said = starting_config(model=args.model, wavs=args.wavs, config_path=config, clips_csv=clips)
    config.parent.mkdir(parents=True, exist_ok=True)
    _write_new(clips, csv_text)
    _write_new(config, text + "\n")
    for line in said:
        print(line)
    print(f"wrote {config} and {clips}; fill the keys marked FILL, check those marked CHECK, then run "
          f"factsheet run --config {config} --out reports/out/mine")
    return 0


def _write_new(path: Path, text: str) -> None:
    with open(path, "x", encoding="utf-8") as f:  # never overwrite
        f.write(text)


def cmd_import_max(args) -> int:
    from factsheet.models.max_audio import import_max

    import_tensorflow_quietly()
    rec = import_max(args.assets, args.out)
    checked = rec["checked_by_sha512sums"]
    print(f"checksums: {'verified against sha512sums.txt: ' + ', '.join(checked) if checked else 'no sha512sums.txt'}")
    print(f"classifier: Keras {rec['classifier']['keras_version']} h5, {rec['n_classes']} classes; "
          f"{rec['n_parameters']:,} parameters in all")
    print(f"wrote {rec['out_path']} (sha256 {rec['out_sha256'][:16]}...); use it with [model] source = \"max\", "
          f"path = \"{rec['out_path']}\"")
    return 0


def cmd_gate(args) -> int:
    """``factsheet gate``: evaluate, print the table, write ``--junit`` / ``--summary``; 0 or 1."""
    from factsheet.document import load_factsheet
    from factsheet.errors import InputError
    from factsheet.gate import evaluate_policy, load_policy, render_junit, render_summary, render_table
    from factsheet.render import atomic_write_text

    for flag, path in (("--junit", args.junit), ("--summary", args.summary)):
        if path is not None and Path(path).is_dir():
            raise InputError(source=flag, value=str(path), reason="is a folder; give a file name")
    policy = load_policy(args.policy)
    doc = load_factsheet(args.factsheet)
    baseline = load_factsheet(args.baseline) if args.baseline is not None else None
    report = evaluate_policy(policy=policy, doc=doc, source=str(args.factsheet), baseline=baseline,
                             baseline_source=None if args.baseline is None else str(args.baseline))
    outputs = {}
    if args.junit is not None:
        outputs[Path(args.junit)] = render_junit(report)
    if args.summary is not None:
        outputs[Path(args.summary)] = render_summary(report)
    for path, text in outputs.items():
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            raise InputError(source=str(path), reason=f"cannot write: {exc.strerror or exc}") from None
    print(render_table(report), end="")
    return report.exit_code



def cmd_compare(args) -> int:
    from factsheet.compare import cmd_compare as run_compare

    return run_compare(args)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from factsheet.errors import InputError

    try:
        if getattr(args, "out", None) is not None and args.command != "import-max":
            check_out_folder(args.out)
        return {"run": cmd_run, "schema": cmd_schema, "gate": cmd_gate, "compare": cmd_compare,
                "render": cmd_render, "reproduce": cmd_reproduce, "init": cmd_init,
                "import-max": cmd_import_max}[args.command](args)
    except InputError as exc:
        print(exc.line(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `factsheet schema | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
