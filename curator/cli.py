"""The ``curator`` command line: run, validate, stages, inspect, train-classifier, train, serve."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    """``--set output.path=out/x --set seed=3`` -> nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


def _load(args) -> Any:
    from curator.spec import SpecError, load_spec

    try:
        return load_spec(args.spec, overrides=_parse_overrides(args.set))
    except SpecError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def cmd_validate(args) -> int:
    spec = _load(args)
    print(f"ok: {args.spec}: {len(spec.inputs)} input(s), {len(spec.stages)} stage(s) -> {spec.output.path}")
    return 0


def cmd_run(args) -> int:
    from curator.pipeline import OutputExistsError, run_pipeline

    spec = _load(args)
    try:
        result = run_pipeline(spec)
    except OutputExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = result.manifest["counts"]
    print(_funnel_text(result.stats))
    print(f"done: {counts['kept']} kept, {counts['rejected']} rejected -> {result.out_dir}")
    return 0


def _funnel_text(stats: dict[str, Any]) -> str:
    lines = [f"{'stage':<22}{'docs in':>10}{'docs out':>10}{'chars out':>14}  drops"]
    inp = stats["inputs"]
    skipped = ", ".join(f"{k}={v}" for k, v in sorted(inp["skipped"].items()))
    lines.append(f"{'(read)':<22}{'':>10}{inp['records']:>10}{'':>14}  {skipped}")
    for st in stats["stages"]:
        drops = ", ".join(f"{k}={v}" for k, v in sorted(st["drops"].items()))
        lines.append(f"{st['name']:<22}{st['docs_in']:>10}{st['docs_out']:>10}{st['chars_out']:>14}  {drops}")
    return "\n".join(lines)


def cmd_stages(args) -> int:
    from curator import registry

    stages = registry.describe()
    if args.json:
        print(json.dumps(stages, indent=2))
        return 0
    for st in stages:
        if "error" in st:
            print(f"{st['name']:<20} (unavailable: {st['error']})")
            continue
        props = st["params"].get("properties", {})
        params = ", ".join(f"{k}={v.get('default', '?')!r}" for k, v in props.items())
        print(f"{st['name']:<20} [{st['kind']}{', stateful' if st['stateful'] else ''}] {st['doc']}")
        if params:
            print(f"{'':<20} params: {params}")
    return 0


def cmd_inspect(args) -> int:
    import pyarrow.parquet as pq

    out = Path(args.out)
    manifest_path = out / "manifest.json"
    if not manifest_path.exists():
        print(f"error: {out} has no manifest.json (not a finished run)", file=sys.stderr)
        return 2
    manifest = json.loads(manifest_path.read_text())
    c = manifest["counts"]
    print(f"{manifest['name']}: {c['input_docs']} input docs, {c['kept']} kept, {c['rejected']} rejected")
    by_subset: dict[str, list] = {}
    for f in manifest["files"]:
        by_subset.setdefault(f["subset"], []).append(f)
    for subset, files in sorted(by_subset.items()):
        print(f"  {subset}: {sum(f['rows'] for f in files)} rows in {len(files)} file(s)")
    for stage, reasons in c["drops_by_stage"].items():
        print(f"  dropped by {stage}: " + ", ".join(f"{r}={n}" for r, n in sorted(reasons.items())))
    data_files = [f for f in manifest["files"] if f["subset"] != "rejected"]
    if data_files and args.n:
        table = pq.read_table(out / data_files[0]["path"]).slice(0, args.n)
        for row in table.to_pylist():
            text = (row.get("text") or "").replace("\n", " ")
            print(f"- {row['id']} [{row.get('source')}] {row.get('url') or ''}\n  {text[: args.width]}")
    return 0


def cmd_report(args) -> int:
    from curator.report import write_report

    if not (Path(args.out) / "manifest.json").exists():
        print(f"error: {args.out} has no manifest.json (not a finished run)", file=sys.stderr)
        return 2
    print(write_report(args.out))
    return 0


def cmd_train_classifier(args) -> int:
    from curator.stages.classifier import train_classifier

    metrics = train_classifier(args.positive, args.negative, args.out, epoch=args.epoch, seed=args.seed)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_train(rest: list[str]) -> int:
    from trainer.train import main

    return main(rest)


def cmd_serve(rest: list[str]) -> int:
    from api.serve import main

    return main(rest)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="curator", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    for name, fn, help_ in (("run", cmd_run, "run a pipeline spec on Ray"),
                            ("validate", cmd_validate, "validate a pipeline spec")):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("spec", help="pipeline spec (YAML or JSON)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec field, e.g. --set output.path=out/x")
        sp.set_defaults(fn=fn)

    sp = sub.add_parser("stages", help="list installed stages and their parameters")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_stages)

    sp = sub.add_parser("inspect", help="counts and sample rows of a finished output")
    sp.add_argument("out")
    sp.add_argument("-n", type=int, default=3, help="sample rows to show")
    sp.add_argument("--width", type=int, default=200)
    sp.set_defaults(fn=cmd_inspect)

    sp = sub.add_parser("report", help="(re)write <out>/report.html for a finished output")
    sp.add_argument("out")
    sp.set_defaults(fn=cmd_report)

    sp = sub.add_parser("train-classifier", help="train a fastText quality/toxicity classifier")
    sp.add_argument("--positive", action="append", required=True, metavar="GLOB")
    sp.add_argument("--negative", action="append", required=True, metavar="GLOB")
    sp.add_argument("--out", required=True)
    sp.add_argument("--epoch", type=int, default=5)
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(fn=cmd_train_classifier)

    sub.add_parser("train", help="train a GPT model on a finished dataset (see `curator train --help`)",
                   add_help=False)
    sub.add_parser("serve", help="start the job service (see `curator serve --help`)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if argv and argv[0] in ("train", "serve"):  # these own their argument parsing
        return (cmd_train if argv[0] == "train" else cmd_serve)(argv[1:])
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
