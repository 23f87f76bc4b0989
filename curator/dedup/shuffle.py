"""Group-wise processing on Ray Data without a Python call per group.

``map_partitions_by`` hash-partitions a dataset on a key (the same shuffle Ray's own ``map_groups``
uses: every row of a key lands in one block) and then calls a vectorized function once per whole block,
so the function can handle all of its groups with array operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from curator.dedup import _ray_compat


def map_partitions_by(
    ds: Any,
    key: str | list[str],
    fn: Callable[[pa.Table], pa.Table],
    *,
    num_partitions: int | None = None,
    fn_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Shuffle ``ds`` so each key value lives in exactly one block, then apply ``fn`` to every block."""
    keys = [key] if isinstance(key, str) else list(key)
    shuffled = _ray_compat.partition_by_keys(ds, keys, num_partitions)
    return shuffled.map_batches(fn, batch_size=None, batch_format="pyarrow", fn_kwargs=fn_kwargs or {})


def default_partitions(ds: Any) -> int:
    """A partition count for a shuffle: the cluster's CPU count, at least 2 (so tests see several)."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else 1
    return max(2, cpus)
