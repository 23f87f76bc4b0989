"""Turn a POST /v1/jobs body into a validated, path-confined pipeline spec.

The body is a spec (JSON, or YAML with ``Content-Type: application/yaml``, both parsed within bounds by
api/parsing.py) or ``{"pipeline": NAME, "overrides": {...}}`` naming a file under the service's ``pipelines/``
folder.
Validation is the CLI's (``curator.spec.validate_spec``): only registered stages, every parameter checked,
errors name the field. Every path is confined to the data roots (api/paths.py) before the stages' own
parameters are checked, so that no stage looks at a file outside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from api.models import NamedPipeline
from api.parsing import ParseError, parse_body
from api.paths import Confiner, PathError
from curator.spec import PipelineSpec, SpecError, format_loc, validate_spec

BodyError = ParseError  # the name the routers use
__all__ = ["BodyError", "build_spec", "parse_body"]


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def resolve_named(data: dict[str, Any], pipelines_dir: Path) -> dict[str, Any]:
    try:
        named = NamedPipeline.model_validate(data)
    except ValidationError as exc:
        raise SpecError([f"{format_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]) from None
    for suffix in (".yaml", ".yml", ".json"):
        path = pipelines_dir / f"{named.pipeline}{suffix}"
        if path.is_file():
            break
    else:
        raise SpecError([f"pipeline: no spec named {named.pipeline!r} under {pipelines_dir}"])
    text = path.read_text(encoding="utf-8")
    try:
        base = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError([f"pipeline: {path.name} is not valid: {exc}"]) from None
    if not isinstance(base, dict):
        raise SpecError([f"pipeline: {path.name} is not a mapping"])
    return merge(base, named.overrides)


def build_spec(data: Any, confiner: Confiner, pipelines_dir: Path) -> PipelineSpec:
    """Validate and confine; raises SpecError (422) listing the problems with their field paths."""
    if isinstance(data, dict) and "pipeline" in data and "inputs" not in data:
        data = resolve_named(data, pipelines_dir)
        confiner = confiner.with_base(pipelines_dir.resolve().parent)
    if not isinstance(data, dict):
        raise SpecError(["(spec): must be a mapping"])
    if isinstance(data.get("ray"), dict) and data["ray"].get("address"):
        raise SpecError(["ray.address: the service chooses the cluster; leave it out"])
    try:
        # the shape first, the paths next: a stage that checks its files (decontaminate's benchmarks) must
        # see them resolved against the data root and confined, not relative to this process's folder
        shaped = PipelineSpec.model_validate(data)
    except ValidationError:
        validate_spec(data, check_inputs=False)  # raises SpecError naming the fields
        raise
    try:
        confined = confiner.confine_spec(shaped.to_dict())
    except PathError as exc:
        raise SpecError([str(exc)]) from None
    return validate_spec(confined, check_inputs=False)
