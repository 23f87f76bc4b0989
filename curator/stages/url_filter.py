"""``url_filter``: drop documents by their URL, from a user-supplied blocklist (or allowlist).

Entries come from ``lists`` (files, one entry per line; blank lines and ``#`` comments skipped) and from
``entries`` inline. An entry is a host (``example.com``), which matches that host and every subdomain
(``ads.example.com``), or a host with a path (``example.com/ads/``), which matches URLs on that host (or
its subdomains) whose path starts with it. Scheme, ``www.`` (when ``ignore_www``), port, user info and
case of the host are ignored; paths compare case-sensitively.

``mode: block`` (default) drops a matching document with reason ``url_blocked``; ``mode: allow`` drops
every document that matches no entry with reason ``url_not_allowed``. A document without a URL is kept
unless ``drop_missing_url`` (reason ``url_missing``). Column ``url_matched``: the entry that matched
(null when none).
"""

from __future__ import annotations

import glob
import gzip
from typing import ClassVar, Literal
from urllib.parse import urlsplit

import pyarrow as pa
from pydantic import Field, model_validator

from curator.paths import InputPath
from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops


class UrlFilterConfig(StageConfig):
    lists: list[InputPath] = Field([], description="files of entries, one host or host/path per line "
                                   "(# comments; .gz allowed)")
    entries: list[str] = Field([], description="entries given inline, as in the files")
    mode: Literal["block", "allow"] = Field("block", description="block: drop matches; allow: drop non-matches")
    ignore_www: bool = Field(True, description="treat www.example.com as example.com, in entries and URLs")
    drop_missing_url: bool = Field(False, description="drop documents that have no URL ('url_missing')")

    @model_validator(mode="after")
    def _some_entries(self) -> UrlFilterConfig:
        if not self.lists and not self.entries:
            raise ValueError("give `lists` (files) or `entries` (inline): an empty list filters nothing")
        return self


def _host_path(url: str, ignore_www: bool) -> tuple[str, str]:
    """(lower-case host, path) of a URL or a scheme-less entry; ('', '') when there is no host."""
    if "://" not in url:
        url = "//" + url.lstrip("/")
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return "", ""
    if ignore_www and host.startswith("www."):
        host = host[4:]
    return host, parts.path or ""


class UrlRules:
    """Host -> path prefixes ('' = the whole host); ``match`` walks the URL's host suffixes."""

    def __init__(self, entries: list[str], ignore_www: bool) -> None:
        self.ignore_www = ignore_www
        self.rules: dict[str, list[str]] = {}
        for entry in entries:
            host, path = _host_path(entry, ignore_www)
            if host:
                self.rules.setdefault(host, []).append("" if path in ("", "/") else path)

    def match(self, url: str) -> str | None:
        host, path = _host_path(url, self.ignore_www)
        labels = host.split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            for prefix in self.rules.get(suffix, ()):
                if path.startswith(prefix):
                    return suffix + prefix
        return None


def read_entries(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig") as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]


class UrlFilter(Stage[UrlFilterConfig]):
    """Drop documents whose URL is on a blocklist of hosts and host/path prefixes (or not on an allowlist)."""

    name: ClassVar[str] = "url_filter"
    writes: ClassVar[tuple[Column, ...]] = (Column("url_matched", "the list entry the URL matched"),)
    drop_reasons: ClassVar[dict[str, str]] = {
        "url_blocked": "the URL matches a blocklist entry (mode: block)",
        "url_not_allowed": "the URL matches no allowlist entry (mode: allow)",
        "url_missing": "the document has no URL (drop_missing_url)",
    }

    def __init__(self, config: UrlFilterConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        entries = list(self.config.entries)
        for pattern in self.config.lists:
            for path in sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]:
                entries += read_entries(path)
        self.rules = UrlRules(entries, self.config.ignore_www)

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        urls = table.column("url").to_pylist() if "url" in table.column_names else [None] * table.num_rows
        matched, reasons = [], []
        for url in urls:
            if not url:
                matched.append(None)
                reasons.append("url_missing" if cfg.drop_missing_url else None)
                continue
            hit = self.rules.match(url)
            matched.append(hit)
            if cfg.mode == "block":
                reasons.append("url_blocked" if hit else None)
            else:
                reasons.append(None if hit else "url_not_allowed")
        table = set_column(table, "url_matched", pa.array(matched, pa.string()))
        return set_drops(table, reasons)
