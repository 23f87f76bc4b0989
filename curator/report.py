"""The run report: ``<out>/report.html``, one self-contained page (figures embedded as base64 PNG).

Built from what a finished run leaves behind: ``stats.json`` (the per-stage funnel), ``manifest.json``
(spec, counts, files) and the Parquet shards of the output and of ``rejected/``. Sections:

- summary: documents in, kept, rejected, files, and the size of each split;
- funnel: documents and characters left after each stage, drops per stage and reason;
- languages: documents per ``lang`` value, kept and rejected;
- quality signals: a histogram per signal column (``quality_*``, ``lang_score``, ``toxicity_*``,
  ``pii_count``, ``contaminated_ngrams``) of kept and rejected documents, with the thresholds the stage
  declares for the column (``Column.thresholds``), valued from the spec (its defaults where the spec gives
  none), drawn as vertical lines;
- dedup: the distribution of ``dup_cluster`` sizes over kept and rejected documents;
- split and mix: documents per split and source, mix copies and down-sampled documents;
- decontamination: matches per benchmark.

A section whose columns or stages are absent says so, so any subset of stages renders. Signal
histograms read at most ``max_rows`` rows per subset (the first ones, in file order); when ``rejected/``
was sampled (``output.rejected_sample`` < 1) its plots show that sample.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from curator.card import as_storage, committed_stats  # noqa: E402
from curator.stages.base import Column  # noqa: E402
from curator.storage import Storage  # noqa: E402

SIGNAL_PREFIXES = ("quality_", "toxicity_")
SIGNAL_NAMES = ("lang_score", "pii_count", "contaminated_ngrams")
CONTEXT_COLUMNS = ("source", "lang", "dup_cluster", "split", "mix_copy", "contaminated_benchmark",
                   "drop_reason", "drop_stage")
KEPT, REJ = "#3b6ea8", "#d9822b"

# ---------------------------------------------------------------- reading


def _read_json(storage: Storage, rel: str) -> dict[str, Any]:
    data = storage.read_json(rel)
    return data if isinstance(data, dict) else {}


def _is_signal(name: str, dtype: pa.DataType) -> bool:
    numeric = pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
    return numeric and (name.startswith(SIGNAL_PREFIXES) or name in SIGNAL_NAMES)


def _files(manifest: dict[str, Any], rejected: bool) -> list[dict[str, Any]]:
    """The manifest's file entries of the dataset (or of rejected/): only what the manifest lists."""
    return [f for f in manifest.get("files", []) if (f["subset"] == "rejected") == rejected]


def read_columns(storage: Storage, entries: list[dict[str, Any]], max_rows: int) -> pa.Table | None:
    """Signal and context columns (never ``text``) of up to ``max_rows`` rows of these files, plus
    ``_subset`` (the file's subset: train, eval, data or rejected)."""
    tables, rows = [], 0
    for entry in entries:
        if rows >= max_rows:
            break
        with storage.open_read(entry["path"]) as f:
            pf = pq.ParquetFile(f)
            cols = [c.name for c in pf.schema_arrow if c.name in CONTEXT_COLUMNS or _is_signal(c.name, c.type)]
            for batch in pf.iter_batches(columns=cols, batch_size=65_536):
                t = pa.Table.from_batches([batch]).slice(0, max_rows - rows)
                tables.append(t.append_column("_subset", pa.array([entry["subset"]] * t.num_rows, pa.string())))
                rows += t.num_rows
                if rows >= max_rows:
                    break
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


def stage_params(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Stage name -> its parameters: the spec's, over the stage's defaults when the stage can load."""
    out: dict[str, dict[str, Any]] = {}
    for entry in manifest.get("spec", {}).get("stages", []):
        name = entry.get("stage")
        params = {k: v for k, v in entry.items() if k not in ("stage", "ray", "sources")}
        try:
            from curator import registry

            params = registry.get(name).Config(**params).model_dump(mode="json")
        except Exception:  # noqa: BLE001 - defaults are a nicety; the spec's own values still show
            pass
        out.setdefault(name, params)
    return out


def declared_columns(stage: str, params: dict[str, Any]) -> tuple[Column, ...]:
    """The columns ``stage`` declares for these parameters (``columns()`` of the configured stage, read
    without building it, so no model loads; the class's ``writes`` where that needs more than the config).
    Empty for a stage that does not load."""
    from curator import registry

    try:
        cls = registry.get(stage)
    except registry.UnknownStageError:
        return ()
    try:
        shell = cls.__new__(cls)
        shell.config = cls.Config(**params)
        return tuple(shell.columns())
    except Exception:  # noqa: BLE001 - a config or columns() that needs a built stage: the class declaration
        return tuple(cls.writes)


def _param(params: dict[str, Any], key: str) -> Any:
    """The value of a dotted config field (``max_top_ngram_char_frac.2``) in JSON-dumped parameters."""
    value: Any = params
    for part in key.split("."):
        value = value.get(part, value.get(int(part)) if part.isdigit() else None) if isinstance(value, dict) else None
    return value


def thresholds_for(column: str, params: dict[str, dict[str, Any]]) -> list[tuple[str, float]]:
    """(label, value) of each threshold the run's stages apply to ``column``: the config fields each stage
    declares as thresholds of the column (``Column.thresholds``), with the run's values."""
    found = []
    for stage, p in params.items():
        for col in declared_columns(stage, p):
            if col.name != column:
                continue
            for key in col.thresholds:
                value = _param(p, key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    found.append((f"{stage}.{key}", float(value)))
    return found


# ---------------------------------------------------------------- drawing


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else _esc(v)

    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _counts(table: pa.Table | None, column: str) -> Counter:
    if table is None or column not in table.column_names:
        return Counter()
    return Counter(table.column(column).to_pylist())


def funnel_section(stats: dict[str, Any]) -> str:
    stages = stats.get("stages", [])
    if not stats:
        return "<p>No <code>stats.json</code>: the funnel is unknown.</p>"
    labels = ["(read)"] + [s["name"] for s in stages]
    docs = [stats.get("inputs", {}).get("records", 0)] + [s["docs_out"] for s in stages]
    chars = [stages[0]["chars_in"] if stages else 0] + [s["chars_out"] for s in stages]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2 + 0.1 * len(labels)))
    for ax, values, title in ((axes[0], docs, "documents left"), (axes[1], chars, "characters left")):
        y = np.arange(len(labels))[::-1]
        ax.barh(y, values, color=KEPT)
        ax.set_yticks(y, labels)
        ax.set_title(f"{title} after each stage")
        for yi, v in zip(y, values):
            ax.text(v, yi, f" {v:,}", va="center", fontsize=8)
        ax.margins(x=0.25)
    parts = [_png(fig)]
    drops = [(s["name"], reason, n) for s in stages for reason, n in sorted(s["drops"].items())]
    skipped = stats.get("inputs", {}).get("skipped", {})
    drops = [("(read)", reason, n) for reason, n in sorted(skipped.items())] + drops
    if drops:
        fig, ax = plt.subplots(figsize=(11, 1.2 + 0.3 * len(drops)))
        y = np.arange(len(drops))[::-1]
        ax.barh(y, [n for _, _, n in drops], color=REJ)
        ax.set_yticks(y, [f"{s}: {r}" for s, r, _ in drops])
        ax.set_title("documents dropped, per stage and reason")
        for yi, (_, _, n) in zip(y, drops):
            ax.text(n, yi, f" {n:,}", va="center", fontsize=8)
        ax.margins(x=0.15)
        parts.append(_png(fig))
    rows = [[s["name"], s["docs_in"], s["docs_out"], s["chars_in"], s["chars_out"], f"{s['seconds']:.2f}",
             ", ".join(f"{k}: {v:,}" for k, v in sorted(s["drops"].items())) or "-"] for s in stages]
    parts.append(_table(["stage", "docs in", "docs out", "chars in", "chars out", "seconds", "drops"], rows))
    return "\n".join(parts)


def _bar_compare(kept: Counter, rejected: Counter, title: str, top: int = 25) -> str:
    keys = [k for k, _ in (kept + rejected).most_common(top)]
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.28 * len(keys)))
    y = np.arange(len(keys))[::-1]
    k_vals = [kept.get(k, 0) for k in keys]
    ax.barh(y, k_vals, color=KEPT, label="kept")
    ax.barh(y, [rejected.get(k, 0) for k in keys], left=k_vals, color=REJ, label="rejected")
    ax.set_yticks(y, ["(none)" if k is None else str(k) for k in keys])
    ax.set_title(title)
    ax.legend(loc="lower right")
    return _png(fig)


def language_section(kept: pa.Table | None, rejected: pa.Table | None) -> str:
    k, r = _counts(kept, "lang"), _counts(rejected, "lang")
    if not k and not r:
        return "<p>No <code>lang</code> column (no language-ID stage in this run).</p>"
    return _bar_compare(k, r, "documents per language (top 25)")


def _values(table: pa.Table | None, column: str) -> np.ndarray:
    if table is None or column not in table.column_names:
        return np.zeros(0)
    arr = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
    return arr[np.isfinite(arr)]


def signals_section(kept: pa.Table | None, rejected: pa.Table | None, params: dict[str, dict[str, Any]]) -> str:
    columns: list[str] = []
    for t in (kept, rejected):
        if t is not None:
            columns += [f.name for f in t.schema if _is_signal(f.name, f.type) and f.name not in columns]
    if not columns:
        return "<p>No quality signal columns in the output.</p>"
    cells = []
    for col in sorted(columns):
        kv, rv = _values(kept, col), _values(rejected, col)
        both = np.concatenate([kv, rv])
        if len(both) == 0:
            continue
        lines = thresholds_for(col, params)
        lo, hi = float(both.min()), float(both.max())
        span = max(hi - lo, abs(hi) * 0.1, 1e-9)
        shown = [(lb, v) for lb, v in lines if lo - span <= v <= hi + span]  # near the data: widen to it
        off = [(lb, v) for lb, v in lines if (lb, v) not in shown]
        lo, hi = min([lo] + [v for _, v in shown]), max([hi] + [v for _, v in shown])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 41)
        fig, ax = plt.subplots(figsize=(5.2, 2.8))
        ax.hist([kv, rv], bins=bins, stacked=True, color=[KEPT, REJ], label=["kept", "rejected"])
        for label, v in shown:
            ax.axvline(v, color="crimson", linestyle="--", linewidth=1.4, label=f"{label} = {v:g}")
        title = col + "".join(f"\n(off-scale: {label} = {v:g})" for label, v in off)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        cells.append(f'<div class="cell">{_png(fig)}</div>')
    return f'<div class="grid">{"".join(cells)}</div>'


def dedup_section(kept: pa.Table | None, rejected: pa.Table | None) -> str:
    clusters = _counts(kept, "dup_cluster") + _counts(rejected, "dup_cluster")
    clusters.pop(None, None)
    if not clusters:
        has = any(t is not None and "dup_cluster" in t.column_names for t in (kept, rejected))
        return "<p>No duplicate clusters found.</p>" if has else "<p>No <code>dup_cluster</code> column (no " \
            "dedup stage in this run).</p>"
    sizes = Counter(clusters.values())
    fig, ax = plt.subplots(figsize=(8, 3))
    xs = sorted(sizes)
    ax.bar([str(x) for x in xs] if len(xs) <= 30 else xs, [sizes[x] for x in xs], color=KEPT)
    if max(sizes.values()) > 50:
        ax.set_yscale("log")
    ax.set_xlabel("documents in the cluster")
    ax.set_ylabel("clusters")
    ax.set_title("duplicate cluster sizes")
    removed = sum(v - 1 for v in clusters.values())
    return _png(fig) + f"<p>{len(clusters):,} clusters of two or more documents; largest {max(xs):,}; " \
        f"{removed:,} documents beyond one per cluster.</p>"


def split_mix_section(kept: pa.Table | None, rejected: pa.Table | None, manifest: dict[str, Any]) -> str:
    parts = []
    files = manifest.get("files", [])
    per_subset: Counter = Counter()
    for f in files:
        per_subset[f["subset"]] += int(f["rows"])
    if kept is not None and "source" in kept.column_names:
        pairs = Counter(zip(kept.column("_subset").to_pylist(), kept.column("source").to_pylist()))
        subsets = sorted({s for s, _ in pairs})
        sources = sorted({str(x) for _, x in pairs})
        fig, ax = plt.subplots(figsize=(8, 1.2 + 0.4 * len(subsets)))
        left = np.zeros(len(subsets))
        cmap = plt.get_cmap("tab20")
        for i, src in enumerate(sources):
            vals = np.array([sum(n for (s, x), n in pairs.items() if s == sub and str(x) == src) for sub in subsets])
            ax.barh(subsets, vals, left=left, color=cmap(i % 20), label=src)
            left += vals
        ax.set_title("documents per split, by source")
        if len(sources) <= 20:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        parts.append(_png(fig))
    rows = [[s, n] for s, n in sorted(per_subset.items())]
    if rows:
        parts.append(_table(["subset", "documents"], rows))
    if kept is not None and "mix_copy" in kept.column_names:
        copies = Counter(s for s, c in zip(kept.column("source").to_pylist(), kept.column("mix_copy").to_pylist())
                         if c)
        total = _counts(kept, "source")
        down = Counter()
        if rejected is not None and "drop_reason" in rejected.column_names:
            down = Counter(s for s, r in zip(rejected.column("source").to_pylist(),
                                             rejected.column("drop_reason").to_pylist()) if r == "mix_downsampled")
        srcs = sorted(set(total) | set(down), key=str)
        parts.append("<h3>Mix</h3>" + _table(
            ["source", "documents in the mix", "share", "of which up-sampled copies", "down-sampled out"],
            [[s, total.get(s, 0), f"{total.get(s, 0) / max(1, sum(total.values())):.1%}", copies.get(s, 0),
              down.get(s, 0)] for s in srcs]))
    return "\n".join(parts) or "<p>No output files.</p>"


def decontamination_section(kept: pa.Table | None, rejected: pa.Table | None) -> str:
    k, r = _counts(kept, "contaminated_benchmark"), _counts(rejected, "contaminated_benchmark")
    k.pop(None, None)
    r.pop(None, None)
    has = any(t is not None and "contaminated_benchmark" in t.column_names for t in (kept, rejected))
    if not has:
        return "<p>No decontamination stage in this run.</p>"
    if not k and not r:
        return "<p>No document shares an n-gram with a benchmark.</p>"
    return _table(["benchmark", "flagged (kept)", "dropped"],
                  [[b, k.get(b, 0), r.get(b, 0)] for b in sorted(set(k) | set(r))])


CSS = """body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{margin-bottom:4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%}
.grid{display:flex;flex-wrap:wrap;gap:6px}.cell{flex:0 0 auto}.muted{color:#777}"""


def rejected_section(storage: Storage, manifest: dict[str, Any], per_reason: int = 3) -> str:
    """A few rejected documents per (stage, reason), the text around the reason, largest reasons first."""
    from curator.examples import reasons_of, rejected_examples

    rows = []
    for stage, reason, count in reasons_of(manifest)[:30]:
        for ex in rejected_examples(storage, reason=reason, stage=stage, n=per_reason, width=240):
            rows.append([f"{stage}: {reason} ({count:,})", ex["id"][:12], ex["url"] or ex["source"] or "",
                         ex["excerpt"]])
    if not rows:
        return "<p>No rejected documents were kept (<code>output.rejected</code>).</p>"
    return _table(["stage: reason (dropped)", "id", "url / source", "text around the reason"], rows)


def render_report(out_dir: str | Path | Storage, max_rows: int = 200_000) -> str:
    storage = as_storage(out_dir)
    manifest = _read_json(storage, "manifest.json")
    stats = committed_stats(storage, manifest) or {}
    kept = read_columns(storage, _files(manifest, rejected=False), max_rows)
    rejected = read_columns(storage, _files(manifest, rejected=True), max_rows)
    params = stage_params(manifest)
    counts = manifest.get("counts", {})
    name = manifest.get("name") or stats.get("name") or storage.url.rstrip("/").rsplit("/", 1)[-1]
    summary = _table(["input documents", "kept", "rejected", "output files"], [[
        counts.get("input_docs", stats.get("inputs", {}).get("records", "?")),
        counts.get("kept", stats.get("output", {}).get("docs", "?")),
        counts.get("rejected", stats.get("output", {}).get("rejected", "?")),
        len(manifest.get("files", [])),
    ]])
    sections = [
        ("summary", "Summary", summary),
        ("funnel", "Funnel", funnel_section(stats)),
        ("languages", "Languages", language_section(kept, rejected)),
        ("signals", "Quality signals", signals_section(kept, rejected, params)),
        ("dedup", "Duplicate clusters", dedup_section(kept, rejected)),
        ("split-mix", "Split and mix", split_mix_section(kept, rejected, manifest)),
        ("decontamination", "Decontamination", decontamination_section(kept, rejected)),
        ("rejected-examples", "Rejected examples", rejected_section(storage, manifest)),
    ]
    body = "\n".join(f'<section id="{sid}"><h2>{title}</h2>\n{content}</section>' for sid, title, content in sections)
    when = manifest.get("created_at", "")
    sample = f" Plots read at most {max_rows:,} rows per subset." if max_rows < math.inf else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_esc(name)}: curation "
            f"report</title><style>{CSS}</style></head><body>\n<h1>{_esc(name)}</h1>\n<p class=\"muted\">"
            f"{_esc(when)} {_esc(storage.url)}.{sample}</p>\n{body}\n</body></html>\n")


def write_report(out_dir: str | Path | Storage, max_rows: int = 200_000) -> str:
    """Write ``<out>/report.html`` (whole or not at all) and return its path or URL."""
    storage = as_storage(out_dir)
    storage.write_bytes("report.html", render_report(storage, max_rows).encode("utf-8"))
    return storage.url_of("report.html")
