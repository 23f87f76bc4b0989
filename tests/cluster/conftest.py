"""Fixtures of the cluster tests: the bundled WARC cut into four input files, the commoncrawl recipe run on
the session's single Ray node (the reference), and two Ray hosts in network namespaces."""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import pytest
from cluster_hosts import PARTS, REPO, SAMPLE, TwoHosts, curator_run_cmd, netns_refusal, split_warc

# Ray Data's Parquet reader starts 32 footer-reading actors per read by default (a new worker process each, spread
# over the nodes); on the 1-CPU hosts that alone took the recipe from ~80 s to ~200 s. Two suffice; the output is
# the same either way.
FAST_PARQUET = {"RAY_DATA_PARQUET_FOOTER_NUM_ACTORS": "2"}


@pytest.fixture(scope="module")
def cluster_data(tmp_path_factory) -> Path:
    """A folder every host sees (same filesystem): ``in/part-*.warc.gz`` and room for outputs."""
    root = tmp_path_factory.mktemp("cluster-data")
    split_warc(SAMPLE, root / "in", PARTS)
    return root


@pytest.fixture(scope="module")
def reference(ray_head, cluster_data) -> Path:
    """The recipe's output from the session's single local Ray node (2 CPUs), through the same CLI."""
    out = cluster_data / "single-node"
    env = dict(os.environ, RAY_ADDRESS=ray_head["gcs"], PYTHONPATH=str(REPO), **FAST_PARQUET)
    proc = subprocess.run(curator_run_cmd(str(cluster_data / "in" / "*.warc.gz"), out), env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def two_hosts():
    """A Ray head (1 CPU, resource hostA) and a worker node (1 CPU, hostB), each on its own host."""
    reason = netns_refusal()
    if reason:
        warnings.warn(f"{reason}: falling back to two Ray nodes on 127.0.0.1 (not two hosts)", stacklevel=1)
    with TwoHosts(cpus=1, use_netns=reason is None, env=FAST_PARQUET) as cluster:
        yield cluster
