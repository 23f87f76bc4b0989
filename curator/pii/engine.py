"""The fast PII engine: one multi-pattern pass to locate candidates, exact patterns and checks on them.

``matcher`` picks what runs the locator patterns of every family (:mod:`curator.pii.patterns`) in one
pass over the text:

- ``hyperscan``: Intel's Hyperscan (the ``hyperscan`` wheel), over the UTF-8 bytes, every match of every
  pattern reported with its leftmost start; byte offsets are mapped back to characters.
- ``re2``: Google's RE2 (``google-re2``): an ``re2.Set`` says which families occur, then each of those
  families' locators runs once (``finditer``).
- ``python``: no locator; every family's exact pattern runs over the whole text (the reference the
  others are tested against, and the fallback where neither wheel installs).
- ``auto`` (default): ``hyperscan`` if it imports, else ``re2``, else ``python``.

Located regions (a locator match widened by the family's reach, overlapping ones merged) are searched
with the family's exact pattern; each match is checked (:mod:`curator.pii.validate`). Overlapping
detections are resolved longest first, then by family order. A text without any locator match costs
the scan and nothing more, so no separate pre-filter is needed.

Engines are compiled once per process and configuration (:func:`get_engine`); a Hyperscan database is
compiled once per thread that scans with it (its scratch space is not shared). A pickled engine is rebuilt
(and cached) on the other side.

Hyperscan is the default by measurement (bench/bench_pii.py, one core of this machine, Debian license and
copyright texts): the whole stage ran at about 2,700 docs/s with Hyperscan, 1,800 with RE2 and 175 with
the Python fallback, with identical detections; the locating pass alone took a third of RE2's time.
"""

from __future__ import annotations

import bisect
import functools
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from curator.pii.patterns import BY_ENTITY, FAMILIES, Family, Options

log = logging.getLogger("curator.pii")

Matcher = Literal["auto", "hyperscan", "re2", "python"]


@dataclass(frozen=True, order=True)
class Detection:
    start: int
    end: int
    entity: str


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    intervals.sort()
    out: list[list[int]] = []
    for s, e in intervals:
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1][1] = e
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def ascii_view(text: str) -> bytes:
    """The text as one byte per character: ASCII as is, every other character (a lone surrogate too) as
    ``?``. Locator patterns are ASCII, so they match the same places, and byte offsets are character
    offsets (no UTF-8 offset mapping)."""
    return text.encode("ascii", "replace")


class _Hyperscan:
    """All locator patterns in one Hyperscan block-mode database (per thread)."""

    def __init__(self, families: tuple[Family, ...]) -> None:
        import hyperscan  # noqa: F401  (fail here, at construction, when the wheel is missing)

        self.families = families
        self._local = threading.local()
        self._db()  # compile now: a bad pattern fails at construction

    def _db(self):
        db = getattr(self._local, "db", None)
        if db is None:
            import hyperscan as hs

            exprs, ids, flags = [], [], []
            for k, fam in enumerate(self.families):
                for pat in fam.locate:
                    exprs.append(pat.encode("ascii"))
                    ids.append(k)
                    flags.append(hs.HS_FLAG_SOM_LEFTMOST | (hs.HS_FLAG_CASELESS if fam.caseless else 0))
            db = hs.Database(mode=hs.HS_MODE_BLOCK)
            db.compile(expressions=exprs, ids=ids, elements=len(exprs), flags=flags)
            self._local.db = db
        return db

    def regions(self, text: str) -> dict[int, list[tuple[int, int]]]:
        hits: list[tuple[int, int, int]] = []
        add = hits.append
        self._db().scan(ascii_view(text), match_event_handler=lambda i, s, e, f, c: add((i, s, e)))
        if not hits:
            return {}
        out: dict[int, list[tuple[int, int]]] = {}
        for i, s, e in hits:
            out.setdefault(i, []).append((s, e))
        return out


class _Re2:
    """An ``re2.Set`` of the families, then each occurring family's locators (one alternation)."""

    def __init__(self, families: tuple[Family, ...]) -> None:
        import re2

        self.families = families
        opts = re2.Options()
        opts.max_mem = 64 << 20
        self._set = re2.Set.SearchSet(opts)
        self._each = []
        for fam in families:
            alt = "|".join(f"(?:{p})" for p in fam.locate)
            pat = ("(?i)" if fam.caseless else "") + alt
            self._set.Add(pat)
            self._each.append(re2.compile(pat, options=opts))
        self._set.Compile()

    def regions(self, text: str) -> dict[int, list[tuple[int, int]]]:
        data = ascii_view(text)  # bytes: RE2 reports byte offsets, no per-match conversion in Python
        found = self._set.Match(data)
        if not found:
            return {}
        return {k: [m.span() for m in self._each[k].finditer(data)] for k in found}


class Engine:
    """Detects and redacts the ``entities`` of a text; see the module docstring."""

    def __init__(self, entities: Iterable[str], options: Options = Options(), matcher: Matcher = "auto") -> None:
        entities = tuple(entities)
        names = list(dict.fromkeys(entities))
        unknown = [e for e in names if e not in BY_ENTITY]
        if unknown:
            raise ValueError(f"the fast PII engine has no entity {unknown}; it knows {sorted(BY_ENTITY)}")
        self.families = tuple(f for f in FAMILIES if f.entity in names)
        self.entities = tuple(f.entity for f in self.families)
        self.options = options
        self._key = (entities, options, matcher)
        self.matcher = self._matcher(matcher)

    def __reduce__(self):  # compiled databases do not pickle: a copy compiles its own (cached per process)
        return get_engine, self._key

    def _matcher(self, matcher: Matcher):
        if matcher in ("auto", "hyperscan"):
            try:
                self.matcher_name = "hyperscan"
                return _Hyperscan(self.families)
            except ImportError:
                if matcher == "hyperscan":
                    raise
        if matcher in ("auto", "re2"):
            try:
                self.matcher_name = "re2"
                return _Re2(self.families)
            except ImportError:
                if matcher == "re2":
                    raise
        if matcher not in ("auto", "python"):
            raise ValueError(f"unknown matcher {matcher!r}")
        if matcher == "auto":
            log.warning("neither hyperscan nor google-re2 imports: PII patterns run in Python (slower)")
        self.matcher_name = "python"
        return None

    # ----------------------------------------------------------------------------------------- detect
    def candidates(self, text: str) -> list[Detection]:
        """Every checked match of every family (overlaps not resolved)."""
        out: list[Detection] = []
        n = len(text)
        if self.matcher is None:
            for fam in self.families:
                self._search(fam, text, 0, n, out)
            return out
        for k, spans in self.matcher.regions(text).items():
            fam = self.families[k]
            left, right = fam.reach
            for lo, hi in _merge([(max(0, s - left), min(n, e + right)) for s, e in spans]):
                self._search(fam, text, lo, hi, out)
        return out

    def _search(self, fam: Family, text: str, lo: int, hi: int, out: list[Detection]) -> None:
        """Matches of ``fam``'s exact pattern that start in ``[lo, hi)``, checked."""
        rx, check, opts = fam.exact, fam.check, self.options
        endpos = min(len(text), hi + fam.max_len + 8)
        pos = lo
        while pos < hi:
            m = rx.search(text, pos, endpos)
            if m is None or m.start() >= hi:
                return
            for s, e in check(text, m, opts):
                out.append(Detection(s, e, fam.entity))
            pos = m.end() if m.end() > m.start() else m.start() + 1

    def detect(self, text: str) -> list[Detection]:
        """Non-overlapping detections in text order (longest first, then family order, on overlap)."""
        if not text:
            return []
        found = self.candidates(text)
        if len(found) <= 1:
            return found
        rank = {e: i for i, e in enumerate(self.entities)}
        found.sort(key=lambda d: (d.start - d.end, rank[d.entity], d.start))
        starts: list[int] = []  # accepted detections, sorted by start (they never overlap)
        taken: list[Detection] = []
        for d in found:
            i = bisect.bisect_right(starts, d.start)
            if (i and taken[i - 1].end > d.start) or (i < len(taken) and taken[i].start < d.end):
                continue
            starts.insert(i, d.start)
            taken.insert(i, d)
        return taken

    def redact(self, text: str) -> tuple[str, list[Detection]]:
        """(text with each detection replaced by ``<ENTITY>``, the detections in the input's offsets)."""
        found = self.detect(text)
        if not found:
            return text, found
        parts, pos = [], 0
        for d in found:
            parts.append(text[pos:d.start])
            parts.append(f"<{d.entity}>")
            pos = d.end
        parts.append(text[pos:])
        return "".join(parts), found


@functools.lru_cache(maxsize=16)
def get_engine(entities: tuple[str, ...], options: Options = Options(), matcher: Matcher = "auto") -> Engine:
    """The engine for this configuration, compiled once per process."""
    return Engine(entities, options, matcher)
