"""Checks, before any task runs, that the spec's resource caps can be met by the machine or cluster.

A cap that cannot be met otherwise shows up late and badly: a task asking for more CPUs, GPUs or memory
than any node has stays pending forever; an object store larger than the machine's memory gets the run
killed by the kernel. ``problems`` compares the asks with what the nodes offer and returns one line per
cap that cannot be met; the driver raises ``ResourceError`` with them before it submits anything.
"""

from __future__ import annotations

import os
from typing import Any

from curator.spec import PipelineSpec

GIB = 1024**3
LOCAL_STORE_SHARE = 0.8  # at most this share of the machine's memory for a local object store


class ResourceError(RuntimeError):
    """A resource cap of the spec cannot be met (the message says which and what the cluster has)."""


def machine_memory() -> int:
    """Physical memory of this machine in bytes (0 when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def local_problems(spec: PipelineSpec, memory: int) -> list[str]:
    """Caps of a local cluster this machine cannot give (checked before Ray starts)."""
    store = spec.ray.object_store_memory
    if store and memory and store > LOCAL_STORE_SHARE * memory:
        return [f"ray.object_store_memory is {_gib(store)} but this machine has {_gib(memory)}: at most "
                f"{LOCAL_STORE_SHARE:.0%} ({_gib(LOCAL_STORE_SHARE * memory)}) can go to the object store"]
    return []


def cluster_problems(spec: PipelineSpec, nodes: list[dict[str, Any]]) -> list[str]:
    """What no alive node of the cluster (``ray.nodes()`` entries) can give one task of this spec."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    most = {k: max((r.get(k, 0) for r in alive), default=0) for k in ("CPU", "GPU", "memory")}
    out = []
    for i, st in enumerate(spec.stages):
        for key, ask in (("CPU", st.ray.num_cpus), ("GPU", st.ray.num_gpus)):
            if ask and ask > most[key]:
                has = f"the largest node has {most[key]:g}" if most[key] else f"no node has a {key}"
                out.append(f"stages[{i}] ({st.stage}) asks for ray.num_{key.lower()}s={ask:g} per task, but "
                           f"{has}: its tasks could never be scheduled")
    task_memory = spec.ray.task_memory
    if task_memory and task_memory > most["memory"]:
        out.append(f"ray.task_memory is {_gib(task_memory)} per task, but the largest node offers "
                   f"{_gib(most['memory'])} to tasks: no task could be scheduled")
    return out


def check(spec: PipelineSpec, *, local: bool) -> None:
    """Raise ``ResourceError`` if a cap cannot be met; ``local``: Ray has not started yet (a local cluster
    will), else the connected cluster's nodes are checked."""
    if local:
        problems = local_problems(spec, machine_memory())
    else:
        import ray

        problems = cluster_problems(spec, ray.nodes())
    if problems:
        raise ResourceError("; ".join(problems))
