"""The output folder: what in it belongs to curator, the commit (manifest last) and the clean-up.

A run owns only what it (or an earlier, resumable run of it) wrote: the files the previous manifest
lists, its own documents next to them (``stats.json``, ``README.md``, ``report.html``) when there is such a
manifest, everything under ``_curator/`` (lock, run records, work files, global-stage decisions), and
shard files named with a key that a run record under ``_curator/runs/`` announced before writing them.
Everything else is *foreign*: a folder holding foreign files is refused unless ``overwrite: true``, and
even then foreign files are never deleted or replaced.

The commit is the manifest: written once every shard exists, it lists exactly the committed files
(path, subset, rows, bytes, sha256). Readers trust it, never a directory listing. Only after it is
written are the superseded files (those of the previous manifest and of unfinished runs that the new
one does not list) and the work files deleted.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from curator.plan import KEY_CHARS
from curator.storage import Storage

log = logging.getLogger("curator.output")

STATE = "_curator"
MANIFEST = "manifest.json"
STATS = "stats.json"
CARD = "README.md"
REPORT = "report.html"
DOCS = (MANIFEST, STATS, CARD, REPORT)
SHARD_NAME = re.compile(r"^(?:data|train|eval|rejected)/part-[A-Za-z0-9_-]+-\d{3}\.(?P<key>[0-9a-f]{"
                        + str(KEY_CHARS) + r"})\.parquet(?:\.tmp-[0-9a-f]{8})?$")


def shard_name(subset: str, label: str, k: int, key: str) -> str:
    """A shard's path: ``<subset>/part-<label>-<k>.<key>.parquet`` (the key names the work that wrote it)."""
    return f"{subset}/part-{label}-{k:03d}.{key[:KEY_CHARS]}.parquet"


def work_name(phase: int, label: str, k: int, key: str) -> str:
    """A work file (a phase's live rows, input of the global stages and of the next phase)."""
    return f"{STATE}/work/p{phase}/{label}.{key[:KEY_CHARS]}-{k:03d}.parquet"


class OutputExistsError(FileExistsError):
    """The output holds a finished run and ``overwrite`` is off."""


class OutputNotEmptyError(FileExistsError):
    """The output holds files that curator did not write."""


@dataclass
class Survey:
    ours: list[str]
    foreign: list[str]


def is_manifest(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("files"), list) and "spec_sha256" in data


class OutputFolder:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def manifest(self) -> dict[str, Any] | None:
        data = self.storage.read_json(MANIFEST)
        return data if is_manifest(data) else None

    def announced_keys(self) -> set[str]:
        """Key prefixes that run records announced (their shards are ours even without a manifest)."""
        keys: set[str] = set()
        for name in self.storage.listdir(f"{STATE}/runs"):
            rec = self.storage.read_json(f"{STATE}/runs/{name}") or {}
            keys.update(k[:KEY_CHARS] for k in rec.get("keys", []))
        return keys

    def survey(self, manifest: dict[str, Any] | None) -> Survey:
        listed = {f["path"] for f in manifest["files"]} if manifest else set()
        keys = self.announced_keys()
        stats = self.storage.read_json(STATS)
        our_stats = isinstance(stats, dict) and "stages" in stats and "status" in stats
        ours, foreign = [], []
        for rel in self.storage.walk_files(""):
            m = SHARD_NAME.match(rel)
            mine = (rel.startswith(f"{STATE}/") or rel in listed or (manifest is not None and rel in DOCS)
                    or (rel == STATS and our_stats) or (m is not None and m.group("key") in keys))
            (ours if mine else foreign).append(rel)
        return Survey(ours, foreign)

    def check_writable(self, *, overwrite: bool, manifest: dict[str, Any] | None, survey: Survey) -> None:
        url = self.storage.url
        if manifest is not None and not overwrite:
            raise OutputExistsError(f"{url} already holds a finished run (manifest.json); set output.overwrite: "
                                    "true or choose another output.path")
        clash = [f for f in survey.foreign if f in DOCS]
        if clash:
            raise OutputNotEmptyError(f"{url} holds {', '.join(clash)}, which curator did not write and a run "
                                      "would replace; move them away or choose another output.path")
        if survey.foreign and not overwrite:
            shown = ", ".join(survey.foreign[:5]) + (f" and {len(survey.foreign) - 5} more" if
                                                     len(survey.foreign) > 5 else "")
            raise OutputNotEmptyError(
                f"{url} is not empty and not a curator output: it holds {shown}. Choose an empty or new "
                "output.path, or set output.overwrite: true to write beside them (curator never deletes "
                "files it did not write)")

    def announce(self, run_id: str, info: dict[str, Any], keys: set[str]) -> None:
        """Record, before any shard is written under them, the keys this run writes."""
        self.storage.write_json(f"{STATE}/runs/{run_id}.json", {**info, "run_id": run_id, "keys": sorted(keys)})

    def commit(self, manifest: dict[str, Any]) -> None:
        self.storage.write_json(MANIFEST, manifest)

    def clean_up(self, manifest: dict[str, Any], previous: dict[str, Any] | None) -> int:
        """After a commit: delete what is ours and not listed (superseded and unfinished shards) and the
        work state. Returns the number of shard files deleted."""
        listed = {f["path"] for f in manifest["files"]}
        old = {f["path"] for f in previous["files"]} if previous else set()
        keys = self.announced_keys()
        doomed = set(old - listed)
        for rel in self.storage.walk_files(""):
            m = SHARD_NAME.match(rel)
            if m is not None and m.group("key") in keys and rel not in listed:
                doomed.add(rel)
        for rel in sorted(doomed):
            self.storage.delete(rel)
        for sub in ("work", "global", "runs"):
            self.storage.delete_tree(f"{STATE}/{sub}")
        if self.storage.local:
            self._remove_empty_dirs()
        return len(doomed)

    def forget_work(self) -> None:
        """``--fresh``: drop the records of finished work (run records stay: they name what is ours)."""
        for sub in ("work", "global"):
            self.storage.delete_tree(f"{STATE}/{sub}")

    def drop_empty_state(self) -> None:
        """Remove ``_curator/`` when nothing is left in it (after a commit, or a run refused at the start)."""
        if self.storage.local and not self.storage.walk_files(STATE):
            self.storage.delete_tree(STATE)

    def _remove_empty_dirs(self) -> None:
        for sub in ("data", "train", "eval", "rejected", STATE):
            path = self.storage.path(sub)
            for root, _dirs, _files in sorted(os.walk(path), key=lambda x: -len(x[0])):
                try:
                    os.rmdir(root)
                except OSError:
                    pass
