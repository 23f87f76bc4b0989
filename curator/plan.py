"""A run's plan, built once on the driver: work units, phases and the keys that make a run resumable.

- A **unit** is one input file, with its fingerprint (size and modification time or ETag).
- A **stage plan** is one frozen record per spec stage (validated config, name, index, sources, Ray
  options); workers build the stage from it without validating again.
- A **phase** is the map stages run per unit (``maps``) followed by the global stages that come right
  after them (``globals``). The last phase has no global stages and writes the final shards. A new
  phase also starts after a global stage that repeats rows (``mix``), so that every row entering a
  global stage has its own ``_rowkey``.
- **Keys** (sha256 hex) name everything a run writes, so a run of the same spec on the same input finds
  what an earlier, interrupted run finished: a unit's key in phase 0 covers the curator version, the
  input file and its fingerprint, its input spec and the phase's stages and output options; in a later
  phase it chains the unit's previous key with the keys of the global stages in between; a global
  stage's key covers the keys of every unit feeding it. A changed input file changes only its own phase-0
  key (and, through the global stages, what follows them); a changed stage changes the keys from its
  phase on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from curator import __version__, registry
from curator.spec import PipelineSpec, StageRayOptions
from curator.stages.base import Stage, StageConfig

KEY_CHARS = 12  # hex digits of a key in file names
_INSTANCES: dict[tuple[int, str], Stage] = {}


def digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class StagePlan:
    index: int
    name: str
    config: StageConfig
    sources: tuple[str, ...] | None
    ray: StageRayOptions
    is_global: bool
    stateful: bool
    multiplies_rows: bool

    def build(self) -> Stage:
        return registry.get(self.name)(self.config)

    def instance(self) -> Stage:
        """The stage object, built once per process (a stateful stage's model loads once per worker)."""
        key = (self.index, repr(self.identity()))
        if key not in _INSTANCES:
            _INSTANCES[key] = self.build()
        return _INSTANCES[key]

    def identity(self) -> dict[str, Any]:
        """What of this stage decides its output (part of every key that covers it)."""
        return {"index": self.index, "name": self.name, "config": self.config.model_dump(mode="json"),
                "sources": list(self.sources) if self.sources is not None else None}


@dataclass(frozen=True)
class Unit:
    index: int
    path: str
    input: int  # index into spec.inputs
    fingerprint: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Phase:
    index: int
    maps: tuple[StagePlan, ...]
    globals: tuple[StagePlan, ...]

    @property
    def final(self) -> bool:
        return not self.globals


def stage_plans(spec: PipelineSpec) -> list[StagePlan]:
    plans = []
    for index, entry in enumerate(spec.stages):
        cls = registry.get(entry.stage)
        plans.append(StagePlan(index, entry.stage, entry.config, tuple(entry.sources) if entry.sources else None,
                               entry.ray, cls.is_global, cls.stateful, bool(getattr(cls, "multiplies_rows", False))))
    return plans


def split_phases(stages: list[StagePlan]) -> list[Phase]:
    """Group stages into phases: maps, then the global stages that follow them."""
    phases: list[Phase] = []
    maps: list[StagePlan] = []
    globals_: list[StagePlan] = []
    for st in stages:
        if not st.is_global and globals_:
            phases.append(Phase(len(phases), tuple(maps), tuple(globals_)))
            maps, globals_ = [], []
        if st.is_global:
            globals_.append(st)
            if st.multiplies_rows:
                phases.append(Phase(len(phases), tuple(maps), tuple(globals_)))
                maps, globals_ = [], []
        else:
            maps.append(st)
    if globals_:
        phases.append(Phase(len(phases), tuple(maps), tuple(globals_)))
        maps = []
    phases.append(Phase(len(phases), tuple(maps), ()))
    return phases


def output_identity(spec: PipelineSpec) -> dict[str, Any]:
    """Spec settings that change the bytes a task writes (besides its stages)."""
    out = spec.output
    return {"version": __version__, "seed": spec.seed, "batch_size": spec.ray.batch_size,
            "shard_size_mb": out.shard_size_mb, "compression": out.compression, "rejected": out.rejected,
            "rejected_sample": out.rejected_sample, "on_error": spec.on_error, "limit": spec.limit}


@dataclass
class RunPlan:
    spec: PipelineSpec
    units: list[Unit]
    phases: list[Phase]

    @property
    def stages(self) -> list[StagePlan]:
        return [st for ph in self.phases for st in (*ph.maps, *ph.globals)]

    def input_identity(self, unit: Unit) -> dict[str, Any]:
        inp = self.spec.inputs[unit.input]
        return {"path": unit.path, "fingerprint": unit.fingerprint, "format": inp.format, "source": inp.source,
                "options": inp.options}

    def first_key(self, unit: Unit) -> str:
        ph = self.phases[0]
        return digest("unit", output_identity(self.spec), self.input_identity(unit),
                      [s.identity() for s in ph.maps], ph.final)

    def next_key(self, previous: str, global_keys: list[str], phase: Phase) -> str:
        return digest("next", previous, global_keys, [s.identity() for s in phase.maps], phase.final,
                      output_identity(self.spec))

    def global_key(self, unit_keys: list[str], earlier: list[str], stage: StagePlan) -> str:
        return digest("global", unit_keys, earlier, stage.identity(), self.spec.seed, __version__)

    def group_key(self, member_keys: list[str]) -> str:
        return digest("group", member_keys)


def build_plan(spec: PipelineSpec, units: list[Unit]) -> RunPlan:
    return RunPlan(spec, units, split_phases(stage_plans(spec)))
