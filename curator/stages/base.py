"""The stage contract (DESIGN.md, "A stage").

A stage is a small class with a pydantic config and a ``__call__(table) -> table``. It receives only
live documents (the executor removes dropped ones before calling it) and marks the ones it drops by
setting the ``drop_reason`` column (null = keep). It never filters rows itself, so nothing is lost
silently: the executor counts each reason and routes dropped rows to ``rejected/``.

A stage declares what it knows, at class level, so nothing outside it keeps tables of its parameters:

- ``writes``: the columns it adds or replaces (:class:`Column`), each with the config fields that
  threshold it (the report draws those thresholds on the column's histogram);
- ``drop_reasons``: every ``drop_reason`` it can set, with what it means;
- where they depend on the config, ``columns()`` and ``reasons()`` give them for the configured stage
  (``writes`` and ``drop_reasons`` then name the config-dependent ones with a placeholder, e.g. ``{n}``);
- path parameters are typed in its config (``curator.paths``: ``InputPath``, ``OutputDir``, ``ModelRef``),
  which the job service's confinement and ``curator validate`` read.

``Stage`` is generic over its config: ``class GopherQuality(Stage[GopherQualityConfig])`` sets
``Config`` and types ``self.config``. Stateful stages (models, engines) set ``stateful = True``: the model
loads once per worker process. Global stages (dedup, split, mix) subclass ``GlobalStage`` and transform a
whole ``ray.data.Dataset``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, get_args, get_origin

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from curator.table import set_column, set_drops

__all__ = ["Column", "GlobalStage", "Stage", "StageConfig", "set_column", "set_drops"]


class StageConfig(BaseModel):
    """Base for stage configs: unknown parameters are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


C = TypeVar("C", bound=StageConfig)


@dataclass(frozen=True)
class Column:
    """A column a stage writes. ``thresholds`` names the config fields compared against it (a signal
    column); ``keep_if_null`` (global stages) means a null in the stage's output leaves the value the
    document already had (e.g. a ``dup_cluster`` set by an earlier dedup stage)."""

    name: str
    description: str = ""
    thresholds: tuple[str, ...] = ()
    keep_if_null: bool = False


class Stage(ABC, Generic[C]):
    """A map stage. Subclasses set ``name``, subclass ``Stage[TheirConfig]`` and implement ``__call__``."""

    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]] = StageConfig
    stateful: ClassVar[bool] = False
    is_global: ClassVar[bool] = False
    writes: ClassVar[tuple[Column, ...]] = ()
    drop_reasons: ClassVar[dict[str, str]] = {}

    config: C

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Config" in cls.__dict__:
            return
        for base in getattr(cls, "__orig_bases__", ()):
            if get_origin(base) is not None and issubclass(get_origin(base), Stage):
                arg = get_args(base)[0]
                if isinstance(arg, type) and issubclass(arg, StageConfig):
                    cls.Config = arg
                    return

    def __init__(self, config: C | None = None, **params: Any) -> None:
        if config is None:
            config = self.Config(**params)  # type: ignore[assignment]
        elif params:
            raise TypeError("pass either a config object or keyword parameters, not both")
        self.config = config  # type: ignore[assignment]

    @abstractmethod
    def __call__(self, table: pa.Table) -> pa.Table:
        """Return ``table`` with this stage's columns added and ``drop_reason`` set on the rows it drops."""

    def columns(self) -> tuple[Column, ...]:
        """The columns this configured stage writes (``writes`` unless they depend on the config).

        An override should read only ``self.config`` where it can: the report calls it on a stage whose
        ``__init__`` has not run (no model loaded) and falls back to ``writes`` if it fails.
        """
        return self.writes

    def reasons(self) -> dict[str, str]:
        """The drop reasons this configured stage can set (``drop_reasons`` unless they depend on the config,
        as ``gopher_repetition``'s ``gopher_top_{n}gram`` do)."""
        return self.drop_reasons

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring."""
        return (cls.__doc__ or "").strip().split("\n", 1)[0].strip()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


class GlobalStage(Stage[C]):
    """A stage that needs the whole dataset (a shuffle): dedup, split, mix.

    ``run`` receives a ``ray.data.Dataset`` of live documents and returns one. Every input row comes out
    at least once (``mix`` repeats rows) with the key column ``_rowkey`` unchanged and the columns in
    ``columns()`` set; a dropped row carries a ``drop_reason``. Other columns may be left out of the
    result (a stage that only needs hashes drops the text early): the executor joins the declared
    columns back onto the documents by ``_rowkey``.
    """

    is_global: ClassVar[bool] = True

    @abstractmethod
    def run(self, ds: Any, *, seed: int = 0) -> Any:
        """Return the transformed ``ray.data.Dataset``."""

    def __call__(self, table: pa.Table) -> pa.Table:
        raise TypeError(f"{self.name} is a global stage: run it on a Dataset with .run()")
