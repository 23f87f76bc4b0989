#!/usr/bin/env bash
# The one entry of every curator container, and of the cluster tests (tests/cluster/):
#
#   entrypoint.sh head   [ray start args...]   Ray head (GCS, dashboard + job server), in the foreground
#   entrypoint.sh worker [ray start args...]   Ray worker node joining $RAY_HEAD:$RAY_PORT
#   entrypoint.sh api    [curator serve args...] the job service (FastAPI on uvicorn)
#   entrypoint.sh train  [curator train args...] the trainer (torchrun when CURATOR_TRAIN_NPROC > 1)
#   entrypoint.sh health                        the container's health check for the role it runs
#
# Environment (all optional unless marked):
#   RAY_PORT (6380; never 6379, which is Redis's)   RAY_NODE_IP (default: first of `hostname -I`)
#   RAY_HEAD (worker: required, the head's host)    RAY_NUM_CPUS, RAY_NUM_GPUS, RAY_OBJECT_STORE_MEMORY
#   RAY_RESOURCES (JSON, e.g. {"hostA": 1})         RAY_DASHBOARD_HOST (0.0.0.0), RAY_DASHBOARD_PORT (8265)
#   RAY_TEMP_DIR                                    RAY_START_ARGS (more `ray start` flags, word-split)
#   CURATOR_HOST (0.0.0.0), CURATOR_PORT (8000), CURATOR_RAY_ADDRESS or RAY_ADDRESS (http URL), CURATOR_* (api)
#   CURATOR_TRAIN_NPROC (1)                         CURATOR_ROLE_FILE (/tmp/curator-role, read by `health`)
set -euo pipefail

die() { echo "entrypoint.sh: $*" >&2; exit 64; }

usage="usage: entrypoint.sh head|worker|api|train|health [args...]"
role=${1:-}
[ -n "$role" ] || die "no role given; $usage"
shift

RAY_PORT=${RAY_PORT:-6380}
[ "$RAY_PORT" != 6379 ] || die "RAY_PORT=6379 is Redis's port; choose another (default 6380)"
role_file=${CURATOR_ROLE_FILE:-/tmp/curator-role}

node_ip() {
  if [ -n "${RAY_NODE_IP:-}" ]; then echo "$RAY_NODE_IP"; return; fi
  local ip
  ip=$(hostname -I 2>/dev/null | awk '{print $1}')
  [ -n "$ip" ] || die "cannot find this host's address (hostname -I is empty); set RAY_NODE_IP"
  echo "$ip"
}

# Flags both node roles take from the environment.
ray_node_args() {
  args=(--node-ip-address="$(node_ip)" --disable-usage-stats --block)
  [ -z "${RAY_NUM_CPUS:-}" ] || args+=(--num-cpus="$RAY_NUM_CPUS")
  [ -z "${RAY_NUM_GPUS:-}" ] || args+=(--num-gpus="$RAY_NUM_GPUS")
  [ -z "${RAY_RESOURCES:-}" ] || args+=(--resources="$RAY_RESOURCES")
  [ -z "${RAY_OBJECT_STORE_MEMORY:-}" ] || args+=(--object-store-memory="$RAY_OBJECT_STORE_MEMORY")
  [ -z "${RAY_TEMP_DIR:-}" ] || args+=(--temp-dir="$RAY_TEMP_DIR")
  if [ -n "${RAY_START_ARGS:-}" ]; then
    read -r -a extra <<<"$RAY_START_ARGS"
    args+=("${extra[@]}")
  fi
}

record_role() { echo "$1" >"$role_file" 2>/dev/null || true; }

case "$role" in
  head)
    ray_node_args
    record_role head
    exec ray start --head --port="$RAY_PORT" --include-dashboard=true \
      --dashboard-host="${RAY_DASHBOARD_HOST:-0.0.0.0}" --dashboard-port="${RAY_DASHBOARD_PORT:-8265}" \
      "${args[@]}" "$@"
    ;;
  worker)
    [ -n "${RAY_HEAD:-}" ] || die "worker: set RAY_HEAD to the head's host name or address"
    ray_node_args
    record_role worker
    exec ray start --address="$RAY_HEAD:$RAY_PORT" "${args[@]}" "$@"
    ;;
  api)
    record_role api
    exec curator serve --host "${CURATOR_HOST:-0.0.0.0}" --port "${CURATOR_PORT:-8000}" "$@"
    ;;
  train)
    record_role train
    nproc=${CURATOR_TRAIN_NPROC:-1}
    if [ "$nproc" -gt 1 ]; then
      exec torchrun --standalone --nproc-per-node="$nproc" -m trainer train "$@"
    fi
    exec curator train "$@"
    ;;
  health)
    current=$(cat "$role_file" 2>/dev/null || true)
    case "$current" in
      head) exec ray health-check --address "$(node_ip):$RAY_PORT" ;;
      worker) grep -qsx raylet /proc/[0-9]*/comm || die "health: no raylet process" ;;
      api) exec python -c "import sys, urllib.request as u; \
sys.exit(u.urlopen('http://127.0.0.1:${CURATOR_PORT:-8000}/healthz', timeout=5).status != 200)" ;;
      train) exit 0 ;;  # a training is healthy while its process runs
      *) die "health: no role recorded in $role_file" ;;
    esac
    ;;
  *)
    die "unknown role '$role'; $usage"
    ;;
esac
