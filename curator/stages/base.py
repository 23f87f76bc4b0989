"""The stage contract (DESIGN.md, "A stage").

A stage is a small class with a pydantic ``Config`` and a ``__call__(table) -> table``. It receives only
live documents (the executor removes dropped ones before calling it) and marks the ones it drops by
setting the ``drop_reason`` column (null = keep). It never filters rows itself, so nothing is lost
silently: the executor counts each reason and routes dropped rows to ``rejected/``.

Stateful stages (models, engines) set ``stateful = True``: the executor runs them in a Ray actor pool so
``__init__`` (the model load) happens once per worker. Global stages (dedup, split) subclass
``GlobalStage`` and transform a whole ``ray.data.Dataset``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from curator.schema import DROP_REASON


class StageConfig(BaseModel):
    """Base for stage configs: unknown parameters are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(ABC):
    """A map stage. Subclasses set ``name``, ``Config`` and implement ``__call__``."""

    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]] = StageConfig
    stateful: ClassVar[bool] = False
    is_global: ClassVar[bool] = False
    # Ray resources a worker of this stage asks for (e.g. {"num_cpus": 1}); the spec may override.
    resources: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: StageConfig | None = None, **params: Any) -> None:
        if config is None:
            config = self.Config(**params)
        elif params:
            raise TypeError("pass either a config object or keyword parameters, not both")
        self.config = config

    @abstractmethod
    def __call__(self, table: pa.Table) -> pa.Table:
        """Return ``table`` with this stage's columns added and ``drop_reason`` set on the rows it drops."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


class GlobalStage(Stage):
    """A stage that needs the whole dataset (a shuffle): dedup, split, mix.

    ``run`` receives a ``ray.data.Dataset`` of live documents and returns one; documents it drops carry
    a non-null ``drop_reason`` in the returned dataset (the executor routes them to ``rejected/``).
    """

    is_global: ClassVar[bool] = True

    @abstractmethod
    def run(self, ds: Any, *, seed: int = 0) -> Any:
        """Return the transformed ``ray.data.Dataset``."""

    def __call__(self, table: pa.Table) -> pa.Table:
        raise TypeError(f"{self.name} is a global stage: run it on a Dataset with .run()")


def set_drops(table: pa.Table, reasons: pa.Array | list[str | None]) -> pa.Table:
    """Return ``table`` with ``drop_reason`` set to ``reasons`` where the table has none yet.

    ``reasons`` holds one entry per row: a reason string to drop the row, or None to keep it. A reason
    already present (from earlier in the same stage) wins, so the first failing rule is recorded.
    """
    reasons = pa.array(reasons, type=pa.string())
    if DROP_REASON in table.column_names:
        existing = table.column(DROP_REASON)
        merged = pc.coalesce(existing, reasons)
        return table.set_column(table.schema.get_field_index(DROP_REASON), DROP_REASON, merged)
    return table.append_column(pa.field(DROP_REASON, pa.string()), reasons)


def set_column(table: pa.Table, name: str, values: Any, type: pa.DataType | None = None) -> pa.Table:
    """Add or replace a column."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=type)
    idx = table.schema.get_field_index(name)
    if idx >= 0:
        return table.set_column(idx, name, arr)
    return table.append_column(name, arr)
