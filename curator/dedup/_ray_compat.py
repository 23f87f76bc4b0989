"""The one place that knows how Ray Data co-locates rows of a key (mirrors ``GroupedData.map_groups``)."""

from __future__ import annotations

from typing import Any


def partition_by_keys(ds: Any, keys: list[str], num_partitions: int | None) -> Any:
    from ray.data.context import ShuffleStrategy

    strategy = ds.context.shuffle_strategy
    hash_based = {ShuffleStrategy.HASH_SHUFFLE, ShuffleStrategy.SHUFFLE_V2}
    if strategy in hash_based:
        n = num_partitions or ds.context.default_hash_shuffle_parallelism
        return ds.repartition(n, keys=keys)
    # sort-based shuffles: a global sort also puts every row of a key in one block
    return ds.sort(keys)
