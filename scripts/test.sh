#!/usr/bin/env bash
# Fresh machine -> full test suite. Installs what the tests need, starts PostgreSQL if it is down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
    || ! command -v docker-compose >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver docker-compose >/dev/null) \
    || echo "warning: could not install chromium/docker-compose; the browser and compose tests will be skipped"
fi
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
. .venv/bin/activate
ruff check .
python -m pytest -q -p no:cacheprovider --durations=20 "$@"
