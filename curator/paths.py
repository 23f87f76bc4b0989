"""Path-typed config fields: which strings of a spec or a stage config name files.

A config field annotated ``InputPath`` (a file or glob that must exist), ``OutputDir`` (a folder that is
written; it need not exist) or ``ModelRef`` (an installed package's name or a path) says so in its type.
Nothing else keeps a list of path parameters: the job service's confinement (``api/paths.py``) walks these
annotations with :func:`map_paths`, for built-in stages and for stages from other packages alike.

``InputPath`` and ``ModelRef`` are checked when the config is validated, so ``curator validate`` (and the
service, before it accepts a job) reports a missing model or list file instead of the run failing later.
URLs (``s3://...``) are not checked here: they are read by the workers.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB = re.compile(r"[*?[]")
_PACKAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class PathRole(StrEnum):
    INPUT = "input"  # a file (or glob of files) that is read
    OUTPUT_DIR = "output_dir"  # a folder that is written
    MODEL = "model"  # an installed package's name, or a path


@dataclass(frozen=True)
class PathField:
    """Annotation metadata marking a string field as a path of the given role."""

    role: PathRole


def is_url(value: str) -> bool:
    return bool(_URL.match(value))


def _local(value: str) -> str:
    return value[len("file://"):] if value.startswith("file://") else os.path.expanduser(value)


def _existing_input(value: str) -> str:
    if is_url(value) and not value.startswith("file://"):
        return value
    path = _local(value)
    found = glob.glob(path, recursive=True) if _GLOB.search(path) else ([path] if os.path.exists(path) else [])
    if not found:
        raise ValueError(f"file not found: {value}")
    return value


def _existing_model(value: str) -> str:
    if is_url(value) and not value.startswith("file://"):
        return value
    if os.path.exists(_local(value)):
        return value
    if _PACKAGE.match(value) and importlib.util.find_spec(value.split(".")[0]) is not None:
        return value
    raise ValueError(f"{value!r} is neither an existing folder nor an installed package (nothing is downloaded)")


InputPath = Annotated[str, PathField(PathRole.INPUT), AfterValidator(_existing_input)]
OutputDir = Annotated[str, PathField(PathRole.OUTPUT_DIR)]
ModelRef = Annotated[str, PathField(PathRole.MODEL), AfterValidator(_existing_model)]

PathFn = Callable[[str, PathRole, str], str]


def map_paths(model: type[BaseModel], data: Any, fn: PathFn, loc: str = "") -> Any:
    """A copy of the raw (unvalidated) mapping ``data`` for ``model`` in which every string that the
    model types as a path is replaced by ``fn(field_location, role, value)``.

    Works on raw input, before validation, so a checker can confine and absolutize paths before any
    validator looks at the file system. Values of the wrong shape are returned unchanged (validation
    reports them later)."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name, field in model.model_fields.items():
        key = field.alias if field.alias and field.alias in data else name
        if key not in data:
            continue
        annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        out[key] = map_value(annotation, data[key], fn, f"{loc}.{key}" if loc else key)
    return out


def map_value(annotation: Any, value: Any, fn: PathFn, loc: str) -> Any:
    """``map_paths`` for one value of type ``annotation``."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        role = next((m.role for m in args[1:] if isinstance(m, PathField)), None)
        if role is not None and isinstance(value, str):
            return fn(loc, role, value)
        return map_value(args[0], value, fn, loc)
    if origin in (Union, types.UnionType):
        return map_value(_branch(args, value), value, fn, loc)
    if origin in (list, tuple, set, frozenset) and isinstance(value, list) and args:
        return [map_value(args[0], v, fn, f"{loc}[{i}]") for i, v in enumerate(value)]
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: map_value(args[1], v, fn, f"{loc}.{k}") for k, v in value.items()}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return map_paths(annotation, value, fn, loc)
    return value


def _branch(args: tuple[Any, ...], value: Any) -> Any:
    """The member of a union that a raw value of this Python type would validate as."""
    def base(t: Any) -> Any:
        return base(get_args(t)[0]) if get_origin(t) is Annotated else (get_origin(t) or t)

    for arg in args:
        b = base(arg)
        if isinstance(value, str) and b is str:
            return arg
        if isinstance(value, dict) and (b is dict or (isinstance(b, type) and issubclass(b, BaseModel))):
            return arg
        if isinstance(value, list) and b in (list, tuple, set, frozenset):
            return arg
    return Any


def path_fields(model: type[BaseModel]) -> dict[str, PathRole]:
    """Top-level fields of ``model`` whose type holds a path somewhere (name -> the first role found)."""
    found: dict[str, PathRole] = {}
    for name, field in model.model_fields.items():
        annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        role = _first_role(annotation)
        if role is not None:
            found[name] = role
    return found


def _first_role(annotation: Any) -> PathRole | None:
    if get_origin(annotation) is Annotated:
        role = next((m.role for m in get_args(annotation)[1:] if isinstance(m, PathField)), None)
        if role is not None:
            return role
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return next(iter(path_fields(annotation).values()), None)
    for arg in get_args(annotation):
        role = _first_role(arg)
        if role is not None:
            return role
    return None


DATA_ROOT_ENV = "CURATOR_DATA_ROOT"
_JOB_COPY = f"{os.sep}runtime_resources{os.sep}working_dir_files{os.sep}"


class OutputPathError(ValueError):
    """A relative output path that would be written where it is lost (a Ray job's working-directory copy)."""


def in_job_working_copy(cwd: str | None = None) -> bool:
    """Whether this process runs in the temporary copy ``ray job submit --working-dir`` made."""
    return _JOB_COPY in (cwd or os.getcwd()) + os.sep


def place_output(path: str, cwd: str | None = None) -> str:
    """Where a run writes ``path``: URLs and absolute paths as given; a relative path under
    ``$CURATOR_DATA_ROOT`` when set, else under the working directory, except inside a Ray job's
    working-directory copy, which disappears with the job: there it is refused with how to fix it."""
    if is_url(path) or os.path.isabs(os.path.expanduser(path)):
        return path
    root = os.environ.get(DATA_ROOT_ENV)
    if root:
        return os.path.join(os.path.abspath(os.path.expanduser(root)), path)
    if in_job_working_copy(cwd):
        raise OutputPathError(
            f"output.path {path!r} is relative, and this run is inside the copy of the working directory that "
            "`ray job submit --working-dir` made, which is deleted with the job: give an absolute path or URL "
            f"(--set output.path=/shared/data/{path}), or set {DATA_ROOT_ENV} for the job, e.g. "
            f"--runtime-env-json '{{\"env_vars\": {{\"{DATA_ROOT_ENV}\": \"/shared/data\"}}}}'")
    return path
