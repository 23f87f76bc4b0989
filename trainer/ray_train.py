"""Everything of the trainer that needs Ray: Ray Train's workers, and Ray Data for tokenizing.

The training loop of ``trainer.train`` run by Ray Train's ``TorchTrainer`` on a cluster's workers:

``run_ray_training({...TrainConfig fields..., "num_workers": 2, "use_gpu": False})`` starts one worker
per GPU (or CPU worker with gloo), each running ``trainer.train.run`` in the process group Ray Train
set up; every metrics record is passed to ``ray.train.report``. ``run_dir`` must be on storage every
worker sees (rank 0 tokenizes and checkpoints there).

``ray_chunks`` tokenizes Parquet row groups as Ray Data tasks (``trainer.data`` calls it when Ray is
connected). This is the only module of the trainer that imports Ray.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import numpy as np
import ray
import ray.train
import torch
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from trainer.data import encode_task
from trainer.train import Dist, TrainConfig, run

_RAY_KEYS = ("num_workers", "use_gpu", "resources_per_worker")


def _worker(config: dict) -> None:
    cfg = TrainConfig(**config)
    device = str(ray.train.torch.get_device()) if torch.cuda.is_available() and cfg.device != "cpu" else "cpu"
    d = Dist(device)

    def on_log(rec: dict) -> None:
        ray.train.report({k: v for k, v in rec.items() if v is not None})

    summary = run(cfg, on_log=on_log, dist_ctx=d)
    ray.train.report({"done": 1, "steps": summary["steps"], "checkpoint": summary["checkpoint"],
                      "manifest_hash": summary["manifest_hash"] or "",
                      "tokenizer_hash": summary["tokenizer_hash"]})


def run_ray_training(config: dict) -> dict:
    """Train with Ray Train; returns the last reported metrics, the checkpoint path and any error.

    config: TrainConfig fields, plus ``num_workers`` (default 2), ``use_gpu`` (default: whether the
    cluster has GPUs) and ``resources_per_worker``. An unknown key is a ValueError.
    """
    config = dict(config)
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(config) - known - set(_RAY_KEYS)
    if unknown:
        raise ValueError(f"unknown training option(s): {sorted(unknown)}")
    num_workers = int(config.pop("num_workers", 2))
    use_gpu = config.pop("use_gpu", None)
    per_worker = config.pop("resources_per_worker", None)
    if use_gpu is None:
        use_gpu = ray.is_initialized() and ray.cluster_resources().get("GPU", 0) >= num_workers
    if not use_gpu:
        config["device"] = "cpu"
    cfg = TrainConfig(**config)  # validates types early, on the driver
    run_dir = Path(cfg.run_dir).resolve()
    config["run_dir"] = str(run_dir)
    config["data"] = str(Path(cfg.data).resolve())
    scaling = ScalingConfig(num_workers=num_workers, use_gpu=bool(use_gpu),
                            **({"resources_per_worker": per_worker} if per_worker else {}))
    trainer = TorchTrainer(
        _worker,
        train_loop_config=config,
        scaling_config=scaling,
        run_config=RunConfig(name=run_dir.name, storage_path=str(run_dir.parent / "ray_results")),
    )
    result = trainer.fit()
    return {
        "metrics": _last_records(run_dir / "metrics.jsonl"),
        "reported": dict(result.metrics or {}),
        "checkpoint": str(run_dir / "ckpt.pt"),
        "run_dir": str(run_dir),
        "error": repr(result.error) if result.error else None,
    }


def _last_records(path: Path) -> dict:
    """The last train record and the last eval record of a metrics JSONL, merged (empty when absent)."""
    out: dict = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out.update(rec)
    return out


def ray_chunks(tasks: list[tuple], workers: int) -> Iterator[tuple[np.ndarray, int]]:
    """Tokenize row groups with Ray Data (order preserved), one task per row group.

    tasks: ``trainer.data`` encode tasks; yields (uint32 token array, skipped rows) in task order.
    """
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ds = ray.data.from_items([{"i": i} for i in range(len(tasks))], override_num_blocks=len(tasks))

    def encode(batch: dict) -> dict:
        outs = [encode_task(tasks[int(i)]) for i in batch["i"]]
        return {"tokens": np.array([o[0].tobytes() for o in outs], dtype=object),
                "skipped": np.array([o[1] for o in outs], dtype=np.int64)}

    kw = {"concurrency": workers} if workers else {}
    for batch in ds.map_batches(encode, batch_size=1, batch_format="numpy", **kw).iter_batches(
        batch_size=1, batch_format="numpy"
    ):
        for raw, skipped in zip(batch["tokens"], batch["skipped"], strict=True):
            yield np.frombuffer(raw, dtype=np.uint32), int(skipped)
