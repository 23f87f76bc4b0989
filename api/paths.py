"""Data-root confinement: every path a submitted spec names must lie inside a configured data root.

Rules: no ``..`` segment anywhere; relative paths resolve against the first root (a named pipeline's:
against the folder holding ``pipelines/``, as ``curator run`` from the project root does); symlinks are resolved
before the check (so a link inside a root that points outside is refused), and so is every file an input
glob matches; URLs are refused unless they start with an allowed prefix (``file://`` is a local path).
Accepted paths are rewritten to absolute, resolved form, so the Ray job sees exactly what was checked.

Which stage parameters are paths is read from the stage's config types (``curator.paths``: ``InputPath``
must exist, ``OutputDir`` may not exist yet, ``ModelRef`` is an installed package's name or else an existing
path), so a stage from another package is confined like a built-in one. Reader options, which carry no
types, are matched by key (``*_path``, ``*_file``, ``*_dir``...).
"""

from __future__ import annotations

import glob
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from curator.paths import PathRole, map_paths

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_MAGIC = re.compile(r"[*?[]")
# stage/reader parameters whose string values are files to read (decontaminate's ``benchmarks`` too)
PATH_KEY = re.compile(r"(^|_)(path|paths|file|files|list|lists|benchmarks)$")
# folders a stage writes to (pii's ``cache_dir``): inside a root, but they need not exist yet
DIR_KEY = re.compile(r"(^|_)(dir|dirs)$")
# an installed package's name or a path (pii's ``spacy_model``): confined when it is a path
MODEL_KEY = re.compile(r"(^|_)model$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class PathError(ValueError):
    """A path is outside the data roots or otherwise refused; ``field`` is its spec field path."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class Confiner:
    def __init__(self, roots: list[Path], allowed_url_prefixes: list[str] = (), base: Path | None = None) -> None:
        self.roots = [Path(r).resolve() for r in roots]
        self.prefixes = [p for p in allowed_url_prefixes if p]
        self.base = Path(base).resolve() if base is not None else self.roots[0]

    def with_base(self, base: Path) -> Confiner:
        """The same roots, with relative paths resolved against ``base`` (still checked against the roots)."""
        return Confiner(self.roots, self.prefixes, base)

    def inside(self, path: Path) -> bool:
        return any(path == root or root in path.parents for root in self.roots)

    def _absolute(self, field: str, raw: str) -> Path | None:
        """Checks shared by inputs and outputs; None for an allowed remote URL."""
        if not isinstance(raw, str) or not raw.strip():
            raise PathError(field, "must be a non-empty path")
        if "\x00" in raw:
            raise PathError(field, "NUL byte in path")
        if raw.startswith("file://"):
            raw = raw[len("file://") :]
        elif _URL.match(raw):
            if ".." in PurePosixPath(raw.split("://", 1)[1]).parts:
                raise PathError(field, "'..' is not allowed in paths")
            if any(raw.startswith(p) for p in self.prefixes):
                return None
            raise PathError(field, f"remote URL {raw.split('://')[0]}:// is not an allowed input prefix")
        path = Path(raw).expanduser() if raw.startswith("~") else Path(raw)
        if ".." in path.parts:
            raise PathError(field, "'..' is not allowed in paths")
        return path if path.is_absolute() else self.base / path

    def input_pattern(self, field: str, raw: str) -> str:
        """An input path or glob -> its absolute form; every match must exist and lie inside a root."""
        path = self._absolute(field, raw)
        if path is None:
            return raw
        parts = path.parts
        cut = next((i for i, part in enumerate(parts) if _MAGIC.search(part)), len(parts))
        static = Path(*parts[:cut]).resolve()
        if not self.inside(static):
            raise PathError(field, self._outside(raw, static))
        pattern = str(static.joinpath(*parts[cut:])) if cut < len(parts) else str(static)
        matches = (
            sorted(glob.glob(pattern, recursive=True)) if cut < len(parts) else ([pattern] if static.exists() else [])
        )
        if not matches:
            raise PathError(field, f"{raw!r} matches no file")
        for match in _with_files_below(matches):
            if not self.inside(Path(match).resolve()):
                raise PathError(field, f"{raw!r} matches {match!r}, which resolves outside the data roots")
        return pattern

    def output_dir(self, field: str, raw: str, *, allow_root: bool = False) -> str:
        path = self._absolute(field, raw)
        if path is None:
            raise PathError(field, "outputs must be local paths inside a data root")
        if _MAGIC.search(str(path)):
            raise PathError(field, "an output path cannot contain glob characters")
        resolved = path.resolve()
        if not self.inside(resolved):
            raise PathError(field, self._outside(raw, resolved))
        if resolved in self.roots and not allow_root:
            raise PathError(field, "the output must be a folder inside a data root, not the root itself")
        if resolved.exists() and not resolved.is_dir():
            raise PathError(field, f"{raw!r} exists and is not a folder")
        return str(resolved)

    def _outside(self, raw: str, resolved: Path) -> str:
        """Why ``raw`` is refused, saying where a relative path went and where paths may go."""
        roots = ", ".join(str(r) for r in self.roots)
        if Path(raw).is_absolute() or raw.startswith(("~", "file://")):
            return f"{raw!r} is outside the data roots ({roots})"
        return (f"{raw!r} is outside the data roots: relative paths resolve against {self.base}, giving {resolved}; "
                f"use a path inside one of {roots}")

    def file_params(self, field: str, params: dict[str, Any]) -> dict[str, Any]:
        """Confine the string values under path-like keys of untyped parameters (reader options)."""
        out = dict(params)
        for key, value in params.items():
            if not isinstance(key, str):
                continue
            if PATH_KEY.search(key):
                out[key] = self._map_strings(f"{field}.{key}", value, self.input_pattern)
            elif DIR_KEY.search(key):
                out[key] = self._map_strings(f"{field}.{key}", value, self._folder)
            elif MODEL_KEY.search(key) and isinstance(value, str):
                out[key] = self._model(f"{field}.{key}", value)
        return out

    def _folder(self, field: str, raw: str) -> str:
        return self.output_dir(field, raw, allow_root=True)

    def _model(self, field: str, raw: str) -> str:
        """An installed package's name (e.g. en_core_web_sm) as it is; anything else is a path that must
        exist inside the data roots (nothing is downloaded)."""
        if _MODULE.match(raw) and importlib.util.find_spec(raw.split(".")[0]) is not None:
            return raw
        try:
            return self.input_pattern(field, raw)
        except PathError as exc:
            if "matches no file" not in str(exc):
                raise
            raise PathError(
                field, f"{raw!r} is neither an installed package nor a file or folder inside the data roots"
            ) from None

    def stage_params(self, field: str, params: dict[str, Any]) -> dict[str, Any]:
        """Confine the parameters of one ``stages[]`` entry by its config's path-typed fields. An unknown
        stage is left as it is (validation refuses it next)."""
        from curator import registry

        try:
            config = registry.get(params.get("stage")).Config
        except (registry.UnknownStageError, TypeError, ValueError):
            return dict(params)
        checks = {PathRole.INPUT: self.input_pattern, PathRole.OUTPUT_DIR: self._folder, PathRole.MODEL: self._model}
        return map_paths(config, params, lambda loc, role, value: checks[role](f"{field}.{loc}", value))

    def _map_strings(self, field: str, value: Any, check) -> Any:
        if isinstance(value, str):
            return check(field, value)
        if isinstance(value, dict):  # {lang: path}
            return {k: self._map_strings(f"{field}.{k}", v, check) for k, v in value.items()}
        if isinstance(value, list):  # paths, or objects with their own path keys ({"path": ..., "name": ...})
            return [
                self.file_params(f"{field}[{i}]", v)
                if isinstance(v, dict)
                else self._map_strings(f"{field}[{i}]", v, check)
                for i, v in enumerate(value)
            ]
        return value

    def confine_spec(self, data: dict[str, Any]) -> dict[str, Any]:
        """Return a copy of a (structurally valid) spec mapping with every path checked and absolutized.
        Raises PathError on the first refused path."""
        spec = dict(data)
        inputs = []
        for i, inp in enumerate(spec.get("inputs") or []):
            inp = dict(inp)
            paths = inp["path"]
            if isinstance(paths, str):
                inp["path"] = self.input_pattern(f"inputs[{i}].path", paths)
            else:
                inp["path"] = [self.input_pattern(f"inputs[{i}].path[{j}]", p) for j, p in enumerate(paths)]
            if inp.get("options"):
                inp["options"] = self.file_params(f"inputs[{i}].options", inp["options"])
            inputs.append(inp)
        spec["inputs"] = inputs
        spec["stages"] = [self.stage_params(f"stages[{i}]", st) for i, st in enumerate(spec.get("stages") or [])]
        output = dict(spec["output"])
        output["path"] = self.output_dir("output.path", output["path"])
        spec["output"] = output
        return spec


def _with_files_below(matches: list[str]) -> Iterator[str]:
    """The matches, and for a matched folder everything below it (a folder input reads its files)."""
    for match in matches:
        yield match
        if Path(match).is_dir():
            yield from glob.iglob(str(Path(match) / "**" / "*"), recursive=True)
