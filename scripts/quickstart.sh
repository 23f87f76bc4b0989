#!/usr/bin/env bash
# Fresh machine -> curated dataset -> a tiny GPT trained on it.
# 1. set up .venv, 2. run pipelines/quickstart.yaml on the bundled sample (local Ray cluster),
# 3. train a tiny model on the result on the CPU, 4. sample from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
curator run pipelines/quickstart.yaml --set output.overwrite=true
curator inspect out/quickstart -n 2
curator train --data out/quickstart --run-dir out/quickstart-model --model tiny --vocab-size 4096 \
  --block-size 128 --batch-size 8 --max-steps 60 --eval-interval 30 --device cpu --no-compile
python -m trainer generate out/quickstart-model/ckpt.pt --prompt "Debian is" --max-new-tokens 40 \
  --temperature 0.8 --top-k 40
