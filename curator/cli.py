"""The ``curator`` command line: run, validate, verify, stages, inspect, report, train-classifier, plus the
commands other packages add through the ``curator.commands`` entry-point group (``serve`` from the job
service, ``train`` from the trainer), so this package imports neither."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any


def _load(args) -> Any:
    from curator.spec import SpecError, load_spec

    try:
        return load_spec(args.spec, sets=args.set)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def cmd_validate(args) -> int:
    spec = _load(args)
    print(f"ok: {args.spec}: {len(spec.inputs)} input(s), {len(spec.stages)} stage(s) -> {spec.output.path}")
    return 0


def cmd_run(args) -> int:
    from curator.paths import OutputPathError
    from curator.pipeline import RunFailed, run_pipeline
    from curator.stats import funnel_text
    from curator.writers.lock import OutputLockedError
    from curator.writers.output import OutputExistsError, OutputNotEmptyError

    spec = _load(args)
    if args.limit is not None:
        spec = spec.model_copy(update={"limit": args.limit})
    try:
        result = run_pipeline(spec, fresh=args.fresh)
    except (OutputExistsError, OutputNotEmptyError, OutputLockedError, OutputPathError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.log_path:
            print(f"full log: {exc.log_path}", file=sys.stderr)
        return 1
    counts = result.manifest["counts"]
    print(funnel_text(result.stats))
    resumed = result.stats["units"]["resumed"]
    note = f" ({resumed} of {result.stats['units']['total']} input files finished by an earlier run)" if resumed else ""
    print(f"done: {counts['kept']} kept, {counts['rejected']} rejected -> {result.out_dir}{note}")
    if args.verify:
        return _print_verify(result.out_dir, quick=False)
    return 0


def _print_verify(out: str, quick: bool) -> int:
    from curator.verify import verify_output

    report = verify_output(out, quick=quick)
    for problem in report["problems"]:
        print(f"problem: {problem}", file=sys.stderr)
    state = "ok" if report["ok"] else "FAILED"
    print(f"verify {state}: {report['output']}: {report.get('files', 0)} files, rows {report.get('rows', {})}")
    return 0 if report["ok"] else 1


def cmd_verify(args) -> int:
    if args.json:
        from curator.verify import verify_output

        report = verify_output(args.out, quick=args.quick)
        print(json.dumps(report, indent=2))
        return 0 if report["ok"] else 1
    return _print_verify(args.out, args.quick)


def cmd_stages(args) -> int:
    from curator import registry

    stages = registry.describe()
    if args.json:
        print(json.dumps(stages, indent=2))
        return 0
    from curator.refdocs import field_default, field_range

    for st in stages:
        if "error" in st:
            print(f"{st['name']:<20} (unavailable: {st['error']})")
            continue
        print(f"{st['name']:<20} [{st['kind']}{', stateful' if st['stateful'] else ''}] {st['doc']}")
        for name, field in registry.get(st["name"]).Config.model_fields.items():
            default = field_default(field).strip("`")
            rng = field_range(field)
            print(f"    {name} = {default}{f'  (range {rng})' if rng else ''}")
            if field.description:
                print(f"        {field.description}")
    return 0


def cmd_inspect(args) -> int:
    import pyarrow.parquet as pq

    from curator.storage import Storage
    from curator.writers.output import is_manifest

    out = Storage(args.out)
    manifest = out.read_json("manifest.json")
    if not is_manifest(manifest):
        print(f"error: {out.url} has no manifest.json (not a finished run)", file=sys.stderr)
        return 2
    c = manifest["counts"]
    print(f"{manifest['name']}: {c['input_docs']} input docs, {c['kept']} kept, {c['rejected']} rejected")
    by_subset: dict[str, list] = {}
    for f in manifest["files"]:
        by_subset.setdefault(f["subset"], []).append(f)
    for subset, files in sorted(by_subset.items()):
        print(f"  {subset}: {sum(f['rows'] for f in files)} rows in {len(files)} file(s)")
    for stage, reasons in c["drops_by_stage"].items():
        print(f"  dropped by {stage}: " + ", ".join(f"{r}={n}" for r, n in sorted(reasons.items())))
    if args.rejected or args.reason or args.stage:
        return _print_rejected(out, args)
    data_files = [f for f in manifest["files"] if f["subset"] != "rejected"]
    if data_files and args.n:
        with out.open_read(data_files[0]["path"]) as f:
            table = pq.ParquetFile(f).read_row_group(0, use_threads=False).slice(0, args.n)
        for row in table.to_pylist():
            text = (row.get("text") or "").replace("\n", " ")
            print(f"- {row['id']} [{row.get('source')}] {row.get('url') or ''}\n  {text[: args.width]}")
    return 0


def _print_rejected(out, args) -> int:
    from curator.examples import rejected_examples

    what = " ".join(x for x in (f"reason={args.reason}" if args.reason else "",
                                f"stage={args.stage}" if args.stage else "") if x) or "any reason"
    shown = 0
    for ex in rejected_examples(out, reason=args.reason, stage=args.stage, n=args.n, width=args.width):
        shown += 1
        print(f"- {ex['id']} [{ex['source']}] {ex['url'] or ''} dropped by {ex['stage']}: {ex['reason']} "
              f"({ex['chars']:,} chars)\n  {ex['excerpt']}")
    if not shown:
        print(f"no rejected documents ({what}) in the files rejected/ keeps "
              "(output.rejected: false or rejected_sample < 1 keep fewer)")
    return 0


def cmd_report(args) -> int:
    from curator.report import write_report
    from curator.storage import Storage
    from curator.writers.output import is_manifest

    if not is_manifest(Storage(args.out).read_json("manifest.json")):
        print(f"error: {args.out} has no manifest.json (not a finished run)", file=sys.stderr)
        return 2
    print(write_report(args.out))
    return 0


def cmd_train_classifier(args) -> int:
    from curator.stages.classifier import train_classifier

    metrics = train_classifier(args.positive, args.negative, args.out, epoch=args.epoch, seed=args.seed)
    print(json.dumps(metrics, indent=2))
    return 0


COMMANDS = "curator.commands"


def plugin_commands() -> dict[str, Any]:
    """Commands other installed packages add: name -> entry point (``main(argv) -> int``)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=COMMANDS)}


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("curator")
    except PackageNotFoundError:
        ver = "unknown (not installed)"
    p = argparse.ArgumentParser(prog="curator", description=__doc__)
    p.add_argument("--version", action="version", version=f"curator {ver}")
    sub = p.add_subparsers(dest="command", required=True)

    for name, fn, help_ in (("run", cmd_run, "run a pipeline spec on Ray (resumes an interrupted run)"),
                            ("validate", cmd_validate, "validate a pipeline spec")):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("spec", help="pipeline spec (YAML or JSON)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec field (repeatable): --set output.path=out/x, "
                        "--set inputs[0].path=data/*.jsonl.zst, --set stages[2].threshold=0.5")
        if name == "run":
            sp.add_argument("--fresh", action="store_true",
                            help="start over: ignore the work an interrupted run of this spec finished")
            sp.add_argument("--verify", action="store_true", help="run `curator verify` on the output afterwards")
            sp.add_argument("--limit", type=int, default=None, metavar="N",
                            help="read only the first N documents of each input file (a quick look)")
        sp.set_defaults(fn=fn)

    sp = sub.add_parser("verify", help="check a finished output against its manifest (files, sha256, counts)")
    sp.add_argument("out", help="the output folder or URL")
    sp.add_argument("--quick", action="store_true", help="skip reading every byte for the sha256 check")
    sp.add_argument("--json", action="store_true", help="print the report as JSON")
    sp.set_defaults(fn=cmd_verify)

    sp = sub.add_parser("stages", help="list installed stages and their parameters")
    sp.add_argument("--json", action="store_true", help="print the stages and their parameter schemas as JSON")
    sp.set_defaults(fn=cmd_stages)

    sp = sub.add_parser("inspect", help="counts and sample rows of a finished output (or what a rule removed)")
    sp.add_argument("out", help="the output folder or URL")
    sp.add_argument("-n", type=int, default=3, help="sample rows to show")
    sp.add_argument("--width", type=int, default=200, help="characters of text to show per row")
    sp.add_argument("--rejected", action="store_true", help="show rejected documents instead of kept ones")
    sp.add_argument("--reason", metavar="REASON", default=None,
                    help="with --rejected: only documents dropped for this reason (e.g. gopher_short_doc)")
    sp.add_argument("--stage", metavar="STAGE", default=None, help="with --rejected: only those this stage dropped")
    sp.set_defaults(fn=cmd_inspect)

    sp = sub.add_parser("report", help="(re)write <out>/report.html for a finished output")
    sp.add_argument("out", help="the output folder or URL")
    sp.set_defaults(fn=cmd_report)

    sp = sub.add_parser("train-classifier", help="train a fastText quality/toxicity classifier")
    sp.add_argument("--positive", action="append", required=True, metavar="GLOB",
                    help="files of good examples (repeatable): .txt (one per line), .jsonl[.gz|.zst] or .parquet")
    sp.add_argument("--negative", action="append", required=True, metavar="GLOB",
                    help="files of bad examples (repeatable)")
    sp.add_argument("--out", required=True, help="where to write the fastText model (.bin)")
    sp.add_argument("--epoch", type=int, default=5, help="training epochs")
    sp.add_argument("--seed", type=int, default=0, help="random seed (the model is deterministic for one seed)")
    sp.set_defaults(fn=cmd_train_classifier)

    for name, ep in sorted(plugin_commands().items()):
        sub.add_parser(name, help=f"({ep.value}; see `curator {name} --help`)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plugins = plugin_commands()
    if argv and argv[0] in plugins:  # these own their argument parsing
        return plugins[argv[0]].load()(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:  # `curator stages | head`: the reader left; stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
