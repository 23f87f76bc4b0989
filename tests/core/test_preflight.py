"""Resource caps a cluster cannot meet fail the run before any task runs, with the cap and what exists."""

from __future__ import annotations

import pytest

from curator.pipeline import RunFailed, run_pipeline
from curator.preflight import GIB, cluster_problems, local_problems
from curator.spec import validate_spec

NODES = [{"Alive": True, "Resources": {"CPU": 2.0, "memory": 8 * GIB}},
         {"Alive": True, "Resources": {"CPU": 4.0, "memory": 4 * GIB}},
         {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0, "memory": 512 * GIB}}]


def _spec(tmp_path, stages=(), **ray):
    (tmp_path / "a.jsonl").write_text('{"text": "hello there world"}\n')
    return validate_spec({"inputs": [{"path": str(tmp_path / "a.jsonl")}], "stages": list(stages),
                          "output": {"path": str(tmp_path / "out")}, "ray": ray})


def test_asks_no_alive_node_meets_are_named(tmp_path):
    spec = _spec(tmp_path, [{"stage": "min_length", "ray": {"num_gpus": 1}},
                            {"stage": "normalize", "ray": {"num_cpus": 6}},
                            {"stage": "normalize", "ray": {"num_cpus": 4}}], task_memory=9 * GIB)
    assert cluster_problems(spec, NODES) == [
        "stages[0] (min_length) asks for ray.num_gpus=1 per task, but no node has a GPU: its tasks could never "
        "be scheduled",
        "stages[1] (normalize) asks for ray.num_cpus=6 per task, but the largest node has 4: its tasks could "
        "never be scheduled",
        "ray.task_memory is 9.00 GiB per task, but the largest node offers 8.00 GiB to tasks: no task could be "
        "scheduled"]
    assert cluster_problems(_spec(tmp_path, [{"stage": "normalize", "ray": {"num_cpus": 4}}],
                                  task_memory=8 * GIB), NODES) == []


def test_a_local_object_store_larger_than_the_machine_is_refused(tmp_path):
    assert local_problems(_spec(tmp_path, object_store_memory=20 * GIB), memory=16 * GIB) == [
        "ray.object_store_memory is 20.00 GiB but this machine has 16.00 GiB: at most 80% (12.80 GiB) can go to "
        "the object store"]
    assert local_problems(_spec(tmp_path, object_store_memory=2 * GIB), memory=16 * GIB) == []


@pytest.mark.ray
def test_a_gpu_stage_on_a_cpu_cluster_fails_at_once_and_writes_no_data(ray_cluster, tmp_path):
    spec = _spec(tmp_path, [{"stage": "min_length", "min_chars": 1, "ray": {"num_gpus": 1}}])
    with pytest.raises(RunFailed, match=r"asks for ray.num_gpus=1 per task, but no node has a GPU"):
        run_pipeline(spec)
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert not list((tmp_path / "out").glob("data/*.parquet"))
