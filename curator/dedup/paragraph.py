"""Paragraph/line-level cross-document dedup (stage ``paragraph_dedup``).

Removes text units (paragraphs or lines) that also occur in a better-ranked document: the idea of
Dolma's paragraph dedup, CCNet's line dedup (Wenzek et al. 2020) and C4's repeated-span removal, but
exact (128-bit hashes, no Bloom filter false positives) and independent of row order and partitioning.

Rules:

* units: a separator is a run of line breaks with only ASCII whitespace between them. With
  ``unit="paragraph"`` the runs holding a blank line (two or more ``\\n``) separate units; with
  ``unit="line"`` every run does (so blank lines belong to separators, not units). A unit is the text
  between two separators (leading/trailing whitespace of its lines included); separators are kept
  exactly as they were.
* each unit is normalized for hashing (``curator.dedup.text.normalize``: ``lowercase``,
  ``fold_whitespace``, optional ``strip_punctuation``) and hashed with XXH3-128. A unit whose normalized
  form is shorter than ``min_unit_chars`` characters (or empty) never counts as a duplicate.
* a unit hash is *duplicated* when it occurs in at least ``min_docs`` distinct documents. Its owner is
  the best-ranked of those documents by the keep policy (``keep="first"``: smallest id; ``"longest"``:
  most characters; ``"score"``: highest ``score_column``; ties by smallest id). The owner keeps every
  copy; every other document loses every copy. A unit repeated inside one document only is left alone.
* rebuilding: the new text is the kept units in order, each preceded by its own original separator,
  except the first kept one (so a removed unit goes with the separator before it, or with the one
  after it when no unit before it is kept). A text that starts or ends with a separator has an empty
  first or last unit, which is always kept, so it still starts or ends with one. Documents with nothing
  removed are unchanged byte for byte.
* a document that lost units and whose remaining text, stripped of whitespace, is empty or shorter
  than ``min_doc_chars`` characters is dropped with ``drop_reason = "duplicate_paragraphs"``; it keeps
  its original text (so ``rejected/`` shows what was removed). Ownership is decided once: a unit
  whose owner is dropped this way (possible only with ``min_doc_chars`` > 0) is not handed on to
  another document. Running the stage again on its kept output removes nothing.

Parameters (defaults): ``unit`` ("paragraph"), ``min_unit_chars`` (20), ``min_docs`` (2),
``min_doc_chars`` (0), ``lowercase`` (True), ``fold_whitespace`` (True), ``strip_punctuation``
(False), ``keep`` ("first"), ``score_column`` (None), ``num_partitions`` (None: the input's blocks).

Output columns: ``para_dup_removed`` (int32, units removed), ``para_dup_chars_removed`` (int64,
characters removed: the removed units plus the separators that went with them).

On Ray, (1) every block emits one row per countable unit (hash, document id, unit position, rank);
(2) those rows are range-partitioned on the hash (``map_partitions_by``), and each block finds the
owner of each of its hashes and emits (id, positions to remove); (3) the removal rows and the documents
meet in a second shuffle keyed by ``id``, where each document is rebuilt. No process holds all hashes.
The input dataset is read twice (steps 1 and 3): materialize it first if it is costly to compute (the
pipeline does). Document ids must be unique (the core schema's contract). Rows come out in id order on
Ray, in input order from ``dedup_table``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field

from curator.dedup.keep import HashedTextConfig, rank_sort_keys, sort_indices
from curator.dedup.shuffle import map_partitions_by
from curator.dedup.text import normalize
from curator.stages.base import Column, GlobalStage
from curator.table import set_column, set_drops

REASON = "duplicate_paragraphs"
REMOVED, CHARS_REMOVED = "para_dup_removed", "para_dup_chars_removed"
HASH, POS, LEN, SIDE, RM = "_pd_hash", "_pd_pos", "_len", "_pd_side", "_pd_rm"
RM_TYPE = pa.list_(pa.int32())
_NOT_WS = np.ones(256, dtype=bool)
_NOT_WS[[9, 10, 11, 12, 13, 32]] = False  # ASCII whitespace


class ParagraphDedupConfig(HashedTextConfig):
    unit: Literal["paragraph", "line"] = Field("paragraph", description="what is deduplicated: paragraph (text "
                                               "between blank lines) or line")
    min_unit_chars: int = Field(20, ge=1, description="characters of a normalized unit below which it never counts "
                                "as a duplicate")
    min_docs: int = Field(2, ge=2, description="distinct documents a unit must occur in to be removed")
    min_doc_chars: int = Field(0, ge=0, description="characters (whitespace stripped) below which a document that "
                               "lost units is dropped (duplicate_paragraphs); 0: only when nothing is left")


@dataclass(frozen=True)
class Units:
    """The units of a string column, as pieces over its own data buffer (no copy).

    ``pieces`` holds, document after document, unit, separator, unit, ..., unit (a document with s
    separators has 2s + 1 pieces). Unit ``u`` of document ``d`` is piece ``2u - d``.
    """

    pieces: pa.Array
    doc: np.ndarray  # (U,) document of each unit
    first: np.ndarray  # (n + 1,) index of each document's first unit; first[n] = U

    @property
    def piece(self) -> np.ndarray:
        return 2 * np.arange(len(self.doc), dtype=np.int64) - self.doc

    @property
    def position(self) -> np.ndarray:
        """Position of each unit inside its document."""
        return np.arange(len(self.doc), dtype=np.int64) - self.first[self.doc]


def _string_parts(text: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """The (null-free) array, its offsets as int64 and its data buffer as uint8."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if text.null_count:
        text = pc.fill_null(text, "")
    _, off_buf, data_buf = text.buffers()
    width = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(off_buf, dtype=width)[text.offset: text.offset + len(text) + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None and data_buf.size else np.zeros(0, np.uint8)
    return text, offsets, data


def _separators(offsets: np.ndarray, data: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) byte spans of the unit separators, in buffer order.

    A separator is a maximal run of newlines with only ASCII whitespace between them, inside one
    document; paragraph mode keeps the runs of two or more newlines (a blank line), line mode all runs.
    """
    lo, hi = int(offsets[0]), int(offsets[-1])
    nl = np.flatnonzero(data[lo:hi] == 10) + lo
    if len(nl) == 0:
        return nl, nl
    doc = np.searchsorted(offsets, nl, side="right") - 1
    # [nl[i], nl[i+1]) holds a non-whitespace byte -> the line between the two newlines is not blank
    inked = np.logical_or.reduceat(_NOT_WS[data[lo:hi]], nl - lo)[:-1]
    linked = ~inked & (doc[1:] == doc[:-1])
    begins = np.flatnonzero(np.concatenate([[True], ~linked]))
    ends = np.flatnonzero(np.concatenate([~linked, [True]]))
    if unit == "paragraph":
        multi = ends > begins
        begins, ends = begins[multi], ends[multi]
    return nl[begins], nl[ends] + 1


def split_units(text: pa.Array | pa.ChunkedArray, unit: str) -> Units:
    """Split every document of ``text`` (nulls read as empty) into units and separators, vectorized."""
    arr, offsets, data = _string_parts(text)
    n = len(offsets) - 1
    sep_start, sep_end = _separators(offsets, data, unit)
    seps = np.bincount(np.searchsorted(offsets, sep_start, side="right") - 1, minlength=n)[:n]
    before = np.concatenate([[0], np.cumsum(seps)])  # separators before each document
    # piece boundaries: each document's start, then its separators' (start, end) pairs, then the end
    bounds = np.insert(np.column_stack([sep_start, sep_end]).ravel(), 2 * before, offsets)
    large = pa.types.is_large_string(arr.type)
    typ, width = (pa.large_string(), np.int64) if large else (pa.string(), np.int32)
    pieces = pa.Array.from_buffers(typ, len(bounds) - 1, [None, pa.py_buffer(bounds.astype(width)),
                                                          arr.buffers()[2] or pa.py_buffer(b"")])
    first = (before + np.arange(n + 1)).astype(np.int64)  # a document has one unit more than separators
    return Units(pieces, np.repeat(np.arange(n, dtype=np.int64), seps + 1), first)


def _digests(strings: pa.Array, index: np.ndarray) -> pa.Array:
    """XXH3-128 digest of ``strings[i]`` for each ``i`` in ``index``."""
    _, off_buf, data_buf = strings.buffers()
    width = np.int64 if pa.types.is_large_string(strings.type) else np.int32
    off = np.frombuffer(off_buf, dtype=width)[strings.offset:]
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    digest = xxhash.xxh3_128_digest
    raw = b"".join([digest(data[s:e]) for s, e in zip(off[index].tolist(), off[index + 1].tolist())])
    return pa.Array.from_buffers(pa.binary(16), len(index), [None, pa.py_buffer(raw)])


def _rank_column(table: pa.Table, cfg: ParagraphDedupConfig) -> tuple[str, pa.Array] | None:
    """The keep-policy column the unit rows carry besides ``id`` (None for keep='first')."""
    if cfg.keep == "longest":
        return LEN, pc.cast(pc.utf8_length(pc.fill_null(table.column("text"), "")), pa.int64())
    if cfg.keep == "score":
        if cfg.score_column not in table.column_names:
            raise ValueError(f"paragraph_dedup keep='score': no column {cfg.score_column!r} in the data")
        return cfg.score_column, table.column(cfg.score_column)
    return None


def unit_rows(table: pa.Table, cfg: ParagraphDedupConfig) -> pa.Table:
    """Block kernel: one row (hash, id, position[, rank]) per countable unit of every document."""
    units = split_units(table.column("text"), cfg.unit)
    norm = normalize(units.pieces, lowercase=cfg.lowercase, fold_whitespace=cfg.fold_whitespace,
                     strip_punctuation=cfg.strip_punctuation)
    length = pc.utf8_length(norm).to_numpy()
    piece = units.piece
    ok = length[piece] >= cfg.min_unit_chars
    docs = pa.array(units.doc[ok])
    cols = {HASH: _digests(norm, piece[ok]), "id": table.column("id").take(docs),
            POS: pa.array(units.position[ok], pa.int32())}
    rank = _rank_column(table, cfg)
    if rank is not None:
        cols[rank[0]] = rank[1].take(docs)
    return pa.table(cols)


def _doc_ranks(table: pa.Table, cfg: ParagraphDedupConfig) -> np.ndarray:
    """Per unit row: its document's keep-policy rank among the block's documents (0 = best)."""
    idx = pc.dictionary_encode(table.column("id").combine_chunks()).indices.to_numpy()
    _, first = np.unique(idx, return_index=True)  # each document's first row, in dictionary order
    docs = table.drop_columns([HASH, POS]).take(pa.array(first))
    order = sort_indices(docs, rank_sort_keys(cfg.keep, cfg.score_column)).to_numpy()
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return rank[idx]


def _hash_words(table: pa.Table) -> np.ndarray:
    """(n, 2) uint64 view of the 16-byte unit hashes."""
    h = table.column(HASH).combine_chunks()
    return np.frombuffer(h.buffers()[1], np.uint64)[2 * h.offset: 2 * (h.offset + len(h))].reshape(-1, 2)


def find_removals(table: pa.Table, cfg: ParagraphDedupConfig) -> pa.Table:
    """Block kernel over whole hash groups: (id, positions to remove) for every non-owner document."""
    if table.num_rows == 0:
        return pa.table({"id": pa.array([], pa.string()), RM: pa.array([], RM_TYPE)})
    rank, words = _doc_ranks(table, cfg), _hash_words(table)
    pos = table.column(POS).to_numpy()
    order = np.lexsort((pos, rank, words[:, 1], words[:, 0]))  # by hash, then best document first
    rank, words, pos = rank[order], words[order], pos[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = (words[1:] != words[:-1]).any(axis=1)
    new_doc = start.copy()
    new_doc[1:] |= rank[1:] != rank[:-1]
    starts = np.flatnonzero(start)
    group = np.cumsum(start) - 1
    doc_no = np.cumsum(new_doc)
    doc_in_group = doc_no - doc_no[starts][group]  # 0 on the owner's rows
    removed = (doc_in_group > 0) & (np.add.reduceat(new_doc, starts)[group] >= cfg.min_docs)
    rows = order[removed]
    return _lists_by_doc(table.column("id").take(pa.array(rows)), rank[removed], pos[removed])


def _lists_by_doc(ids: pa.ChunkedArray, rank: np.ndarray, pos: np.ndarray) -> pa.Table:
    """Removed (id, position) rows -> one (id, positions in order) row per document, in rank order."""
    order = np.lexsort((pos, rank))
    rank = rank[order]
    starts = np.flatnonzero(np.concatenate([[True], rank[1:] != rank[:-1]])) if len(rank) else rank
    lists = pa.ListArray.from_arrays(pa.array(np.append(starts, len(rank)), pa.int32()),
                                     pa.array(pos[order], pa.int32()))
    return pa.table({"id": ids.take(pa.array(order[starts], pa.int64())), RM: lists})


def doc_rows(table: pa.Table) -> pa.Table:
    """Document side of the join by id: the document plus ``_pd_side = 0`` and an empty removal list."""
    table = set_column(table, SIDE, pa.array(np.zeros(table.num_rows, np.int8)))
    return set_column(table, RM, pa.nulls(table.num_rows, RM_TYPE))


def removal_rows(removals: pa.Table, schema: pa.Schema) -> pa.Table:
    """Removal side of the join: rows of the documents' schema with only id, side = 1 and positions."""
    n = removals.num_rows
    given = {"id": removals.column("id"), SIDE: pa.array(np.ones(n, np.int8)), RM: removals.column(RM)}
    return pa.table([given.get(f.name, pa.nulls(n, f.type)) for f in schema], schema=schema)


def _rebuild(text: pa.Array, drop_doc: np.ndarray, drop_pos: np.ndarray, unit: str
             ) -> tuple[pa.Array, np.ndarray]:
    """Texts with unit ``drop_pos[i]`` removed from document ``drop_doc[i]``; units removed per doc."""
    units = split_units(text, unit)
    n = len(text)
    if np.any(drop_pos >= np.diff(units.first)[drop_doc]):
        raise RuntimeError("paragraph_dedup: a removal names a unit the document does not have")
    keep = np.ones(len(units.doc), dtype=bool)
    keep[units.first[drop_doc] + drop_pos] = False
    before = np.cumsum(keep) - keep  # kept units before each unit, all documents
    kept_before = before - before[units.first[units.doc]]
    piece, later = units.piece, units.position > 0
    piece_keep = np.zeros(len(units.pieces), dtype=bool)
    piece_keep[piece] = keep
    piece_keep[piece[later] - 1] = keep[later] & (kept_before[later] > 0)  # the separator before a unit
    kept = np.concatenate([[0], np.cumsum(piece_keep)])
    doc_piece = 2 * units.first - np.arange(n + 1)
    lists = pa.ListArray.from_arrays(pa.array(kept[doc_piece], pa.int32()), units.pieces.filter(piece_keep))
    removed = np.bincount(units.doc[~keep], minlength=n).astype(np.int32)
    return pc.binary_join(lists, pa.scalar("", units.pieces.type)), removed


def apply_removals(table: pa.Table, cfg: ParagraphDedupConfig) -> pa.Table:
    """Block kernel keyed by id: rebuild the documents named by removal rows; add the stage columns."""
    side = table.column(SIDE)
    docs = table.filter(pc.equal(side, 0)).drop_columns([SIDE, RM])
    rem = table.filter(pc.equal(side, 1))
    n = docs.num_rows
    removed, chars = np.zeros(n, np.int32), np.zeros(n, np.int64)
    reasons = pa.nulls(n, pa.string())
    if rem.num_rows:
        lists = rem.column(RM).combine_chunks()
        row = pc.index_in(rem.column("id"), value_set=docs.column("id").combine_chunks())
        if row.null_count:
            raise RuntimeError("paragraph_dedup: removal rows for an id without a document")
        elem_row = row.to_numpy()[pc.list_parent_indices(lists).to_numpy()]
        elem_pos = lists.flatten().to_numpy().astype(np.int64)
        changed = np.unique(elem_row)
        docs, removed, chars, reasons = _apply(docs, changed, np.searchsorted(changed, elem_row), elem_pos, cfg)
    docs = set_column(docs, REMOVED, pa.array(removed, pa.int32()))
    docs = set_column(docs, CHARS_REMOVED, pa.array(chars, pa.int64()))
    return set_drops(docs, reasons)


def _apply(docs: pa.Table, changed: np.ndarray, drop_doc: np.ndarray, drop_pos: np.ndarray,
           cfg: ParagraphDedupConfig) -> tuple[pa.Table, np.ndarray, np.ndarray, pa.Array]:
    """Rebuild rows ``changed`` (sorted) of ``docs``; return them with per-row counts and drop reasons.

    ``drop_doc`` indexes ``changed``; ``drop_pos`` is the unit position removed from that document.
    """
    n = docs.num_rows
    text = docs.column("text").combine_chunks()
    old = text.take(pa.array(changed))
    new, count = _rebuild(old, drop_doc, drop_pos, cfg.unit)
    left = pc.utf8_length(pc.utf8_trim_whitespace(new)).to_numpy()
    dropped = (left == 0) | (left < cfg.min_doc_chars)
    removed, chars = np.zeros(n, np.int32), np.zeros(n, np.int64)
    removed[changed] = count
    chars[changed] = pc.subtract(pc.utf8_length(pc.fill_null(old, "")), pc.utf8_length(new)).to_numpy()
    mask = np.zeros(n, dtype=bool)
    mask[changed[~dropped]] = True
    text = pc.replace_with_mask(text, pa.array(mask), new.filter(pa.array(~dropped)).cast(text.type))
    docs = set_column(docs, "text", text)
    drop = np.zeros(n, dtype=bool)
    drop[changed[dropped]] = True
    reasons = pc.if_else(pa.array(drop), pa.scalar(REASON), pa.scalar(None, pa.string()))
    return docs, removed, chars, reasons


def dedup_table(table: pa.Table, cfg: ParagraphDedupConfig | None = None) -> pa.Table:
    """Paragraph dedup of one in-memory table, through the same kernels as the Ray stage."""
    cfg = cfg or ParagraphDedupConfig()
    removals = find_removals(unit_rows(table, cfg), cfg)
    docs = doc_rows(table)
    return apply_removals(pa.concat_tables([docs, removal_rows(removals, docs.schema)]), cfg)


class ParagraphDedup(GlobalStage[ParagraphDedupConfig]):
    """Remove paragraphs/lines that a better-ranked document also has (see the module docstring)."""

    name: ClassVar[str] = "paragraph_dedup"
    writes: ClassVar[tuple[Column, ...]] = (
        Column("text", "the text without the units a better-ranked document also holds"),
        Column(REMOVED, "units (paragraphs or lines) removed"),
        Column(CHARS_REMOVED, "characters removed with them"),
    )
    drop_reasons: ClassVar[dict[str, str]] = {REASON: "nothing (or too little) left after removing duplicate units"}

    def run(self, ds: Any, *, seed: int = 0) -> Any:
        cfg = self.config
        n = cfg.num_partitions
        schema = ds.schema()
        if schema is None:  # no rows
            return ds
        units = ds.map_batches(unit_rows, batch_format="pyarrow", fn_kwargs={"cfg": cfg})
        removals = map_partitions_by(units, HASH, find_removals, num_partitions=n, fn_kwargs={"cfg": cfg})
        docs = ds.map_batches(doc_rows, batch_format="pyarrow")
        doc_schema = doc_rows(schema.base_schema.empty_table()).schema
        rows = removals.map_batches(removal_rows, batch_format="pyarrow", fn_kwargs={"schema": doc_schema})
        return map_partitions_by(docs.union(rows), "id", apply_removals, num_partitions=n,
                                 fn_kwargs={"cfg": cfg})


__all__ = ["ParagraphDedup", "ParagraphDedupConfig", "dedup_table", "split_units"]
