"""Pipeline spec: the YAML/JSON file that says what to read, which stages to run, where to write.

Validated with pydantic before anything runs. Every problem is reported with the path of the field,
e.g. ``stages[2].threshold: Input should be less than or equal to 1``.

```yaml
name: quickstart
inputs:
  - path: examples/data/*.warc.gz      # glob or fsspec URL (list allowed)
    format: warc                       # optional: detected from the extension
    source: commoncrawl                # optional: the reader's default otherwise
    options: {}                        # reader options (text_field, text_column, ...)
stages:
  - stage: html_to_text                # a registered stage name
    extractor: trafilatura             # the stage's own parameters
    ray: {concurrency: 2}              # optional execution hints
output:
  path: out/quickstart
seed: 0
```
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from curator import registry
from curator.stages.base import StageConfig

FORMATS = ("warc", "wet", "jsonl", "parquet", "arrow")


class SpecError(ValueError):
    """A pipeline spec is invalid; ``errors`` holds one ``field.path: problem`` line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("invalid pipeline spec:\n  " + "\n  ".join(errors))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Model):
    path: str | list[str] = Field(description="glob(s) or fsspec URL(s)")
    format: Literal["warc", "wet", "jsonl", "parquet", "arrow"] | None = Field(
        None, description="the reader to use; detected from each file's name when unset")
    source: str | None = Field(None, description="the documents' `source` value (the reader's default when unset: "
                               "warc, wet, parquet, hf, or jsonl/pile/<set name>)")
    options: dict[str, Any] = Field(default_factory=dict, description="reader-specific options")

    @property
    def patterns(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class StageRayOptions(_Model):
    concurrency: int | None = Field(None, ge=1, description="at most this many tasks of this stage's phase at once")
    num_cpus: float | None = Field(None, gt=0, description="CPUs each task of this stage's phase asks Ray for")
    num_gpus: float | None = Field(None, ge=0, description="GPUs each task of this stage's phase asks Ray for")
    batch_size: int | None = Field(None, ge=1, description="(unused; the run's ray.batch_size applies)")


class StageSpec(BaseModel):
    """One entry of ``stages``: the stage name, its parameters inline, optional ``ray`` hints."""

    model_config = ConfigDict(extra="allow")

    stage: str = Field(description="a registered stage name (`curator stages` lists them)")
    ray: StageRayOptions = Field(default_factory=StageRayOptions, description="execution hints for this stage")
    sources: list[str] | None = Field(
        None, description="apply only to documents whose `source` matches one of these glob patterns; "
        "others pass through unchanged (map stages only)")
    _config: StageConfig | None = PrivateAttr(None)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def config(self) -> StageConfig:
        if self._config is None:
            self._config = registry.get(self.stage).Config(**self.params)
        return self._config


class OutputSpec(_Model):
    path: str = Field(description="output folder: a local path or an fsspec URL (s3://...)")
    shard_size_mb: float = Field(128.0, gt=0, description="target size of one Parquet shard")
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field("zstd", description="Parquet compression codec")
    rejected: bool = Field(True, description="write dropped documents to <out>/rejected/")
    rejected_sample: float = Field(1.0, ge=0, le=1, description="fraction of dropped docs kept there")
    overwrite: bool = Field(False, description="replace an existing finished output")


class RaySpec(_Model):
    address: str | None = Field(None, description="cluster address; RAY_ADDRESS or a local cluster if unset")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local cluster")
    batch_size: int = Field(256, ge=1, description="documents per batch handed to a stage")
    concurrency: int | None = Field(None, ge=1, description="at most this many unit tasks at once (default: 2 per CPU)")
    object_store_memory: int | None = Field(
        None, ge=78_643_200, description="bytes of Ray's object store for a local cluster (spills to disk beyond)")
    spill_dir: str | None = Field(None, description="folder where a local cluster spills objects (default: Ray's)")
    task_memory: int | None = Field(
        None, ge=1, description="bytes of memory each task reserves (Ray runs no more tasks on a node than its "
        "memory holds); a run whose cap no node can meet fails before it starts")


class PipelineSpec(_Model):
    name: str = Field("pipeline", pattern=r"^[A-Za-z0-9_.-]+$", description="the run's name (in the manifest, "
                      "the report and the dataset card)")
    inputs: list[InputSpec] = Field(min_length=1, description="what to read")
    stages: list[StageSpec] = Field(default_factory=list, description="the stages, run in this order")
    output: OutputSpec = Field(description="where and how to write the result")
    seed: int = Field(0, description="hash seed of fuzzy_dedup, split and mix (where they set none) and of the "
                      "output.rejected_sample choice: the same input, spec and seed give the same output")
    ray: RaySpec = Field(default_factory=RaySpec, description="the Ray cluster and batch settings")
    on_error: Literal["skip", "fail"] = Field(
        "skip", description="skip: a bad file or a document a stage fails on is counted and skipped; fail: stop")
    limit: int | None = Field(None, ge=1, description="read at most this many documents of each input file")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def digest(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def format_loc(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a field path: ``stages[2].threshold``. Pydantic marks an error in a
    mapping's key (not its value) with a ``"[key]"`` entry after the key: ``max_dup_ngram_char_frac[0] (key)``."""
    out = ""
    for part in loc:
        if part == "[key]":
            out += " (key)"
        else:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(spec)"


def _errors(exc: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for err in exc.errors():
        loc = format_loc(err["loc"])
        path = f"{prefix}.{loc}" if prefix and loc != "(spec)" else (prefix or loc)
        lines.append(f"{path}: {err['msg']}")
    return lines


def validate_spec(data: dict[str, Any], *, check_inputs: bool = True) -> PipelineSpec:
    """Validate a spec mapping: the outer structure, every stage's parameters, and (optionally) that every
    input pattern matches at least one file. Raises SpecError listing all problems."""
    if not isinstance(data, dict):
        raise SpecError(["(spec): must be a mapping"])
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_errors(exc)) from None
    problems: list[str] = []
    for i, entry in enumerate(spec.stages):
        try:
            cls = registry.get(entry.stage)
        except registry.UnknownStageError as exc:
            problems.append(f"stages[{i}].stage: {exc}")
            continue
        if entry.sources is not None and cls.is_global:
            problems.append(f"stages[{i}].sources: not supported by global stage {entry.stage!r}")
        try:
            entry._config = cls.Config(**entry.params)
        except ValidationError as exc:
            problems.extend(_errors(exc, f"stages[{i}]"))
        except TypeError as exc:
            problems.append(f"stages[{i}]: {exc}")
    from curator.readers import FORMATS, detect_format, expand_inputs, reader_options

    for i, inp in enumerate(spec.inputs):
        formats = {inp.format} if inp.format else {f for p in inp.patterns if (f := detect_format(p))}
        for pattern in inp.patterns if check_inputs else []:
            try:
                files = expand_inputs([pattern])
            except (FileNotFoundError, OSError, ValueError) as exc:
                problems.append(f"inputs[{i}].path: {exc}")
                continue
            if inp.format is None:
                unknown = [f for f in files if detect_format(f) is None]
                if unknown:
                    problems.append(f"inputs[{i}].path: cannot tell the format of {unknown[0]} from its name"
                                    f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}; "
                                    f"set inputs[{i}].format to one of {', '.join(FORMATS)}")
                formats |= {f for f in map(detect_format, files) if f}
        for key in inp.options:
            takers = [f for f in sorted(formats) if key in reader_options(f)]
            if formats and not takers:
                known = sorted({o for f in formats for o in reader_options(f)})
                problems.append(f"inputs[{i}].options.{key}: not an option of the {'/'.join(sorted(formats))} "
                                f"reader (its options: {', '.join(known) or 'none'})")
    if problems:
        raise SpecError(problems)
    return spec


_SET_PART = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def parse_set_key(key: str) -> list[str | int]:
    """``stages[2].threshold`` -> ``["stages", 2, "threshold"]``; a malformed key raises SpecError."""
    parts: list[str | int] = []
    pos = 0
    while pos < len(key):
        if parts and key[pos] == "." and not key.startswith("[", pos + 1):
            pos += 1
        m = _SET_PART.match(key, pos)
        if not m:
            raise SpecError([f"--set {key}: cannot read the key at {key[pos:]!r} (use a.b, a[0].b)"])
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts or not isinstance(parts[0], str):
        raise SpecError([f"--set {key}: the key must start with a field name"])
    return parts


def apply_sets(data: Any, items: list[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides (values parsed as YAML scalars) to a loaded spec. Keys are dotted
    field paths with list indexes: ``output.path``, ``inputs[0].path``, ``stages[2].threshold``. A missing
    mapping key is created; a list index must exist (``stages[9]`` of a 5-stage spec is an error)."""
    data = {} if data is None else data
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SpecError([f"--set expects KEY=VALUE, got {item!r}"])
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        parts = parse_set_key(key.strip())
        node: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = key.strip() if last else _format_parts(parts[: depth + 1])
            if isinstance(part, int):
                if not isinstance(node, list):
                    raise SpecError([f"--set {key}: {_format_parts(parts[:depth]) or '(spec)'} is not a list"])
                if not -len(node) <= part < len(node):
                    raise SpecError([f"--set {key}: {where} does not exist (the list has {len(node)} items)"])
            elif not isinstance(node, dict):
                raise SpecError([f"--set {key}: {_format_parts(parts[:depth])} is not a mapping"])
            if last:
                node[part] = value
            else:
                if isinstance(part, str) and part not in node:
                    node[part] = {}
                node = node[part]
    return data


def _format_parts(parts: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(parts))


def load_spec(path: str | Path, *, check_inputs: bool = True, overrides: dict | None = None,
              sets: list[str] | None = None) -> PipelineSpec:
    """Read a YAML or JSON spec file and validate it; ``overrides`` are merged into the top level, then
    ``sets`` (``KEY=VALUE`` strings, see ``apply_sets``) are applied."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([f"(spec): cannot read {path}: {exc.strerror or exc}"]) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise SpecError([f"(spec): {path} is not valid {kind}: {exc}"]) from None
    if overrides:
        data = _deep_merge(data or {}, overrides)
    if sets:
        data = apply_sets(data, sets)
    return validate_spec(data, check_inputs=check_inputs)


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
