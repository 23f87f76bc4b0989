"""Ray Data sink that writes through :class:`curator.writers.parquet.ShardWriter`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
from ray.data import Datasink
from ray.data.datasource.datasink import WriteResult

from curator.writers.parquet import ShardWriter, TaskOutput


class ShardSink(Datasink[TaskOutput]):
    """Each write task writes rolling temporary shards; the driver collects their ``TaskOutput``s."""

    def __init__(self, tmp_dir: Path, shard_bytes: int, compression: str, write_rejected: bool) -> None:
        self.tmp_dir = Path(tmp_dir)
        self.shard_bytes, self.compression, self.write_rejected = shard_bytes, compression, write_rejected
        self.results: list[TaskOutput] = []

    def on_write_start(self, *args, **kwargs) -> None:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def write(self, blocks: Iterable[pa.Table], ctx) -> TaskOutput:
        writer = ShardWriter(self.tmp_dir, ctx.task_idx, self.shard_bytes, self.compression,
                             self.write_rejected)
        for block in blocks:
            if not isinstance(block, pa.Table):
                block = pa.Table.from_pandas(block, preserve_index=False)
            writer.add(block)
        return writer.close()

    def on_write_complete(self, write_result: WriteResult[TaskOutput]) -> None:
        self.results = list(write_result.write_returns)

    @property
    def supports_distributed_writes(self) -> bool:
        return True
