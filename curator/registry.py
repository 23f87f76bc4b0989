"""Stage registry: stages are discovered through the ``curator.stages`` entry-point group.

An outside package adds a stage by declaring, in its own ``pyproject.toml``::

    [project.entry-points."curator.stages"]
    my_stage = "my_package.module:MyStage"

``MyStage`` subclasses :class:`curator.stages.base.Stage`. This project's own stages are registered the
same way; ``BUILTIN`` repeats them so a source checkout works before ``pip install -e .``.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from curator.stages.base import Stage

GROUP = "curator.stages"

BUILTIN: dict[str, str] = {
    "html_to_text": "curator.stages.extract:HtmlToText",
    "normalize": "curator.stages.normalize:Normalize",
    "min_length": "curator.stages.length:MinLength",
    "langid": "curator.stages.langid:LangId",
    "gopher_quality": "curator.stages.gopher:GopherQuality",
    "gopher_repetition": "curator.stages.gopher:GopherRepetition",
    "c4_quality": "curator.stages.c4:C4Quality",
    "fineweb_quality": "curator.stages.fineweb:FineWebQuality",
    "quality_classifier": "curator.stages.classifier:QualityClassifier",
    "toxicity": "curator.stages.toxicity:Toxicity",
    "pii": "curator.stages.pii:PiiRedact",
    "exact_dedup": "curator.dedup.exact:ExactDedup",
    "fuzzy_dedup": "curator.dedup.fuzzy:FuzzyDedup",
    "paragraph_dedup": "curator.dedup.paragraph:ParagraphDedup",
    "split": "curator.stages.split:Split",
    "eval_overlap": "curator.stages.eval_overlap:EvalOverlap",
    "decontaminate": "curator.stages.decontaminate:Decontaminate",
    "mix": "curator.stages.mix:Mix",
    "url_filter": "curator.stages.url_filter:UrlFilter",
}


class UnknownStageError(KeyError):
    def __str__(self) -> str:
        return self.args[0]


@cache
def available() -> dict[str, str]:
    """Stage name -> ``module:Class`` target, built-ins first, then installed entry points."""
    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep.value
    return found


def _load(target: str) -> type[Stage]:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Stage)):
        raise TypeError(f"{target} is not a curator Stage subclass")
    return obj


@cache
def get(name: str) -> type[Stage]:
    """The stage class registered under ``name``; a clear error for unknown or broken stages."""
    targets = available()
    if name not in targets:
        raise UnknownStageError(f"unknown stage {name!r}; installed stages: {', '.join(sorted(targets))}")
    try:
        cls = _load(targets[name])
    except (ImportError, AttributeError) as exc:
        raise UnknownStageError(f"stage {name!r} ({targets[name]}) failed to load: {exc}") from exc
    if getattr(cls, "name", None) != name:
        cls.name = name
    return cls


def describe() -> list[dict[str, Any]]:
    """Every installed stage with its kind and parameter JSON schema (for `curator stages`, the API)."""
    out = []
    for name, target in sorted(available().items()):
        try:
            cls = get(name)
        except UnknownStageError as exc:
            out.append({"name": name, "target": target, "error": str(exc)})
            continue
        out.append(
            {
                "name": name,
                "target": target,
                "kind": "global" if cls.is_global else "map",
                "stateful": cls.stateful,
                "doc": (cls.__doc__ or "").strip().split("\n\n")[0],
                "params": cls.Config.model_json_schema(),
            }
        )
    return out
