"""The dataset summary (``manifest["dataset"]``) and the Hugging Face style dataset card (``README.md``).

``dataset_summary`` reads the written Parquet shards (columns ``text``, ``source`` and, when present,
``lang``; one row group at a time) and counts documents, characters and estimated tokens per split and
per source, and documents per language. Tokens are estimated as characters / 4 (a rule of thumb for
English text under a BPE tokenizer, not a tokenizer count).

``write_card`` writes ``<out>/README.md``: YAML front matter the ``datasets`` library and the Hub read
(``configs`` naming each split and its files, languages, license placeholder, size category, task), then
the description: counts, the pipeline's stages and parameters, the per-stage funnel, how to load it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from curator.stats import funnel_rows
from curator.storage import Storage

CHARS_PER_TOKEN = 4
TOKEN_NOTE = "estimated_tokens = characters / 4 (rule of thumb for English BPE tokenizers, not a count)"
REJECTED = "rejected"
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (10**9, "100M<n<1B"),
                   (10**10, "1B<n<10B"), (10**11, "10B<n<100B"), (10**12, "100B<n<1T")]


def _counts() -> dict[str, int]:
    return {"docs": 0, "chars": 0, "estimated_tokens": 0}


def _add(into: dict[str, int], docs: int, chars: int) -> None:
    into["docs"] += docs
    into["chars"] += chars
    into["estimated_tokens"] = into["chars"] // CHARS_PER_TOKEN


def summarize_table(partial: dict[str, Any], subset: str, table: pa.Table) -> dict[str, Any]:
    """Add one table of ``subset``'s documents to a partial summary (docs and chars per subset and per
    source, documents per language); the write tasks keep one per task, the driver merges them."""
    n = table.num_rows
    length = pc.fill_null(pc.utf8_length(table.column("text")), 0) if "text" in table.column_names \
        else pa.array([0] * n, pa.int64())
    chars = int(pc.sum(length).as_py() or 0)
    split = partial.setdefault("splits", {}).setdefault(subset, {"docs": 0, "chars": 0})
    split["docs"] += n
    split["chars"] += chars
    src = table.column("source") if "source" in table.column_names else pa.nulls(n, pa.string())
    grouped = pa.table({"source": pc.fill_null(src.cast(pa.string()), "(none)"), "len": length}) \
        .group_by("source").aggregate([("len", "sum"), ("len", "count")])
    sources = partial.setdefault("sources", {})
    for name, c_sum, c_n in zip(*(grouped.column(k).to_pylist() for k in ("source", "len_sum", "len_count"))):
        s = sources.setdefault(name, {"docs": 0, "chars": 0, "splits": {}})
        s["docs"] += c_n
        s["chars"] += c_sum or 0
        s["splits"][subset] = s["splits"].get(subset, 0) + c_n
    for col, key in (("pii_count", "pii_spans"), ("eval_overlap_ngrams", "eval_overlap_ngrams")):
        if col in table.column_names:
            partial[key] = partial.get(key, 0) + int(pc.sum(table.column(col)).as_py() or 0)
            partial[f"{key}_docs"] = partial.get(f"{key}_docs", 0) + int(
                pc.sum(pc.greater(pc.fill_null(table.column(col), 0), 0)).as_py() or 0)
    if "lang" in table.column_names:
        langs = partial.setdefault("languages", {})
        for lang, k in Counter(pc.fill_null(table.column("lang").cast(pa.string()), "(none)").to_pylist()).items():
            langs[lang] = langs.get(lang, 0) + k
    return partial


def merge_summaries(partials: list[dict[str, Any]], files: list[dict[str, Any]]) -> dict[str, Any]:
    """The dataset summary from partial summaries and the manifest's file entries (files, bytes per split)."""
    splits: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, Any]] = {}
    langs: Counter = Counter()
    has_lang = False
    extra: dict[str, int] = {}
    total = _counts()
    for entry in files:
        if entry["subset"] == REJECTED:
            continue
        split = splits.setdefault(entry["subset"], {**_counts(), "files": 0, "bytes": 0})
        split["files"] += 1
        split["bytes"] += int(entry.get("bytes") or 0)
    for part in partials:
        for subset, c in part.get("splits", {}).items():
            _add(splits.setdefault(subset, {**_counts(), "files": 0, "bytes": 0}), c["docs"], c["chars"])
            _add(total, c["docs"], c["chars"])
        for name, c in part.get("sources", {}).items():
            s = sources.setdefault(name, {**_counts(), "splits": {}})
            _add(s, c["docs"], c["chars"])
            for subset, k in c["splits"].items():
                s["splits"][subset] = s["splits"].get(subset, 0) + k
        for key in ("pii_spans", "eval_overlap_ngrams"):
            for k in (key, f"{key}_docs"):
                if k in part:
                    extra[k] = extra.get(k, 0) + part[k]
        if "languages" in part:
            has_lang = True
            langs.update(part["languages"])
    summary: dict[str, Any] = {"total": total, "splits": splits, "sources": dict(sorted(sources.items())),
                               "token_estimate": TOKEN_NOTE, **extra}
    if has_lang:
        summary["languages"] = dict(langs.most_common())
    return summary


def dataset_summary(out_dir: str | Path | Storage, files: list[dict[str, Any]]) -> dict[str, Any]:
    """Per split (subset) and per source: docs, chars, estimated tokens; documents per language, read from
    the written shards (``files``: the manifest's entries; rejected files are not part of the dataset)."""
    storage = as_storage(out_dir)
    partial: dict[str, Any] = {}
    for entry in files:
        if entry["subset"] == REJECTED:
            continue
        with storage.open_read(entry["path"]) as f:
            pf = pq.ParquetFile(f)
            names = set(pf.schema_arrow.names)
            cols = [c for c in ("text", "source", "lang", "pii_count", "eval_overlap_ngrams") if c in names]
            for batch in pf.iter_batches(columns=cols, batch_size=65_536):
                summarize_table(partial, entry["subset"], pa.Table.from_batches([batch]))
    return merge_summaries([partial], files)


def as_storage(out: str | Path | Storage) -> Storage:
    return out if isinstance(out, Storage) else Storage(str(out))


def size_category(n: int) -> str:
    for bound, name in SIZE_CATEGORIES:
        if n < bound:
            return name
    return "n>1T"


def _split_name(subset: str) -> str:
    return "train" if subset == "data" else subset


def front_matter(manifest: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The card's YAML metadata (Hub dataset-card fields)."""
    data_files = [{"split": _split_name(s), "path": f"{s}/*.parquet"} for s in _ordered(summary["splits"])]
    meta: dict[str, Any] = {"configs": [{"config_name": "default", "data_files": data_files, "default": True}]}
    langs = [code for code in summary.get("languages", {}) if code not in ("(none)", "unknown")]
    if langs:
        meta["language"] = langs
    meta.update({
        "license": "other",
        "license_name": "source-licenses",
        "license_details": "Documents keep the licenses and terms of their sources; set the license before "
                           "publishing.",
        "license_link": "README.md#license",
        "size_categories": [size_category(summary["total"]["docs"])],
        "task_categories": ["text-generation"],
        "pretty_name": manifest.get("name", "dataset"),
        "tags": ["curator", "pretraining"],
    })
    return meta


def _ordered(splits: dict[str, Any]) -> list[str]:
    rank = {"train": 0, "data": 0, "eval": 1}
    return sorted(splits, key=lambda s: (rank.get(s, 2), s))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def committed_stats(storage: Storage, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The funnel of the committed run: the manifest's copy, else ``stats.json``."""
    stats = manifest.get("stats") or storage.read_json("stats.json")
    return stats if isinstance(stats, dict) and "stages" in stats else None


def _funnel(storage: Storage, manifest: dict[str, Any]) -> str:
    stats = committed_stats(storage, manifest)
    if stats is None:
        return "_No stats.json found._"
    rows = [[r["stage"], "" if r["docs_in"] is None else r["docs_in"], r["docs_out"],
             "" if r["chars_out"] is None else r["chars_out"], _drops(r["drops"])] for r in funnel_rows(stats)]
    return _table(["stage", "docs in", "docs out", "chars out", "drops (reason: docs)"], rows)


def _drops(drops: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(drops.items())) or "-"


def render_card(out_dir: str | Path | Storage, manifest: dict[str, Any]) -> str:
    storage = as_storage(out_dir)
    summary = manifest.get("dataset") or dataset_summary(storage, manifest.get("files", []))
    meta = yaml.safe_dump(front_matter(manifest, summary), sort_keys=False, allow_unicode=True)
    name = manifest.get("name", "dataset")
    counts = manifest.get("counts", {})
    versions = manifest.get("versions", {})
    spec = manifest.get("spec", {})
    total = summary["total"]
    parts = [f"---\n{meta}---\n", f"# {name}\n"]
    parts.append(
        f"Pretraining text curated by curator {versions.get('curator', '?')} on {manifest.get('created_at', '?')}: "
        f"{total['docs']:,} documents, {total['chars']:,} characters, about {total['estimated_tokens']:,} tokens "
        f"(estimated as characters / 4, not a tokenizer count), from {len(manifest.get('inputs', []))} input "
        f"file(s) holding {counts.get('input_docs', 0):,} documents; {counts.get('rejected', 0):,} documents "
        "were removed (see the funnel below).\n")
    parts.append("## Splits\n")
    parts.append(_table(["split", "files", "docs", "chars", "est. tokens", "bytes"],
                        [[_split_name(s), v["files"], v["docs"], v["chars"], v["estimated_tokens"], v["bytes"]]
                         for s, v in ((s, summary["splits"][s]) for s in _ordered(summary["splits"]))]) + "\n")
    parts.append("## Sources\n")
    parts.append(_table(["source", "docs", "chars", "est. tokens", "docs per split"],
                        [[s, v["docs"], v["chars"], v["estimated_tokens"],
                          ", ".join(f"{_split_name(k)}: {n:,}" for k, n in sorted(v["splits"].items()))]
                         for s, v in summary["sources"].items()]) + "\n")
    if summary.get("languages"):
        langs = list(summary["languages"].items())
        parts.append("## Languages\n")
        parts.append(_table(["language", "docs", "share"],
                            [[k, n, f"{n / max(1, total['docs']):.1%}"] for k, n in langs[:30]]) + "\n")
        if len(langs) > 30:
            parts.append(f"and {len(langs) - 30} more languages.\n")
    parts.append("## How it was made\n")
    stages = spec.get("stages", [])
    if stages:
        lines = []
        for i, st in enumerate(stages, 1):
            params = {k: v for k, v in st.items() if k not in ("stage", "ray")}
            lines.append(f"{i}. `{st['stage']}`" + (f": `{json.dumps(params, sort_keys=True)}`" if params else ""))
        parts.append("Stages, in order, with the parameters given in the spec (others at their defaults):\n\n"
                     + "\n".join(lines) + "\n")
    else:
        parts.append("No stages: the documents are the inputs as read.\n")
    parts.append("### Funnel\n")
    parts.append(_funnel(storage, manifest) + "\n")
    parts.append(f"Spec SHA-256 `{manifest.get('spec_sha256', '?')}`, seed {manifest.get('seed', 0)}. Versions: "
                 + ", ".join(f"{k} {v}" for k, v in versions.items()) + ". Every file, with its row count and "
                 "SHA-256, is listed in `manifest.json`; `report.html` has the plots.\n")
    parts.append("## Columns\n")
    parts.append(_columns(storage, manifest) + "\n")
    parts.append("## Personal information\n")
    parts.append(_personal_information(manifest, summary) + "\n")
    if "eval" in summary["splits"]:
        parts.append("## Train/eval overlap\n")
        parts.append(_overlap(manifest, summary) + "\n")
    parts.append("## How to load\n")
    parts.append(
        "```python\nfrom datasets import load_dataset\n\n"
        "ds = load_dataset(\"path/to/this/folder\")  # reads this card's configs: "
        + ", ".join(f"\"{_split_name(s)}\"" for s in _ordered(summary["splits"])) + "\n"
        "ds = load_dataset(\"parquet\", data_dir=\"path/to/this/folder\")  # by folder names: train/, "
        "eval/ comes as \"test\"\n```\n\n"
        "or with pyarrow: `pyarrow.dataset.dataset(\"path/to/this/folder/train\", format=\"parquet\")`.\n")
    parts.append("## License\n")
    parts.append("`other`: the documents keep the licenses and terms of use of their sources (listed under "
                 "Sources and in `manifest.json`). Replace the placeholder before publishing.\n")
    return "\n".join(parts)


CORE_DESCRIPTIONS = {
    "id": "stable document id: a hash of the input file and the record's key in it",
    "text": "the document's text",
    "source": "where the document came from (the input's `source`; Pile subsets as pile/<name>)",
    "url": "the document's URL, when the input has one",
    "meta": "the source's own metadata, a JSON object",
}


def _stage_columns(manifest: dict[str, Any]) -> dict[str, str]:
    """Column name -> description, from the ``writes`` declarations of the stages the spec ran."""
    from curator import registry

    out: dict[str, str] = {}
    for st in manifest.get("spec", {}).get("stages", []):
        try:
            cls = registry.get(st["stage"])
        except Exception:  # noqa: BLE001 - a stage not installed here: its columns go undescribed
            continue
        for col in getattr(cls, "writes", ()):
            out.setdefault(col.name, f"{col.description} (`{st['stage']}`)")
    return out


def _columns(storage: Storage, manifest: dict[str, Any]) -> str:
    data = [f for f in manifest.get("files", []) if f["subset"] != REJECTED]
    if not data:
        return "_No data files._"
    with storage.open_read(data[0]["path"]) as f:
        schema = pq.ParquetFile(f).schema_arrow
    described = {**CORE_DESCRIPTIONS, **_stage_columns(manifest)}
    rows = []
    for field in schema:
        desc = described.get(field.name)
        if desc is None and field.name.startswith("pii_"):
            desc = f"{field.name[4:]} spans replaced (`pii`)"
        rows.append([f"`{field.name}`", str(field.type), desc or ""])
    return _table(["column", "type", "description"], rows)


def _stage_entries(manifest: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [st for st in manifest.get("spec", {}).get("stages", []) if st.get("stage") == name]


def _personal_information(manifest: dict[str, Any], summary: dict[str, Any]) -> str:
    pii = _stage_entries(manifest, "pii")
    if not pii:
        return ("No PII stage ran: the documents may hold e-mail addresses, phone numbers, names and other "
                "personal information exactly as their sources had them.")
    cfg = pii[-1]
    spans, docs = summary.get("pii_spans"), summary.get("pii_spans_docs")
    found = (f" {spans:,} spans were replaced in {docs:,} documents of the dataset." if spans is not None else "")
    return (f"The `pii` stage (engine `{cfg.get('engine', 'fast')}`) replaced what it found of "
            f"{', '.join(cfg['entities']) if cfg.get('entities') else 'its default entities'} with placeholders."
            f"{found} Detection is automatic: names and addresses in free text are found less reliably than "
            "e-mail addresses, phone numbers and card numbers; review before publishing.")


def _overlap(manifest: dict[str, Any], summary: dict[str, Any]) -> str:
    split = (_stage_entries(manifest, "split") or [{}])[-1]
    grouped = split.get("group_near_duplicates", True)
    lines = [("Near-duplicate groups (MinHash LSH at a similarity below dedup's, joined with dedup's clusters) "
              "were kept on one side of the split, so no near-copy of an eval document is in train."
              if grouped else "The split hashed each document on its own (`group_near_duplicates: false`): "
              "near-copies can straddle train and eval.")]
    drops = manifest.get("counts", {}).get("drops_by_stage", {}).get("eval_overlap")
    if _stage_entries(manifest, "eval_overlap"):
        removed = sum((drops or {}).values())
        left = summary.get("eval_overlap_ngrams_docs", 0)
        lines.append(f"`eval_overlap` measured the long n-grams train shares with eval: {removed:,} train documents "
                     f"were removed for it; {left:,} train documents that share n-grams with eval remain "
                     "(non-zero only with `mode: flag`).")
    else:
        lines.append("No `eval_overlap` stage ran: shared passages shorter than a near-duplicate were not measured.")
    return " ".join(lines)


def write_card(out_dir: str | Path | Storage, manifest: dict[str, Any]) -> str:
    """Write ``<out>/README.md`` (whole or not at all) and return its path or URL."""
    storage = as_storage(out_dir)
    storage.write_bytes("README.md", render_card(storage, manifest).encode("utf-8"))
    return storage.url_of("README.md")
