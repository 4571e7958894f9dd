#!/usr/bin/env bash
# Reproduces the tables in evals/README.md: the five agents on crafter-goals and crafter-open (heldout split),
# then one comparison per suite. Finished episodes are kept (--resume), so rerunning only fills gaps.
#   evals/readme_table.sh [OUT] ;  env: SEEDS (seeds for random/oracle/open-loop), LLM_SEEDS (rafa, greedy), WORKERS
set -euo pipefail
OUT=${1:-runs/readme}
SEEDS=${SEEDS:-5}
LLM_SEEDS=${LLM_SEEDS:-1}
WORKERS=${WORKERS:-2}
AGENTS="random oracle open-loop rafa greedy"
for agent in $AGENTS; do
  n=$SEEDS; case $agent in greedy|rafa) n=$LLM_SEEDS ;; esac
  for suite in crafter-goals crafter-open; do
    embodia eval "$suite" --agent "$agent" --split heldout --num-seeds "$n" --workers "$WORKERS" \
      --out "$OUT/$suite-$agent" --resume
  done
done
for suite in crafter-goals crafter-open; do
  embodia eval compare $(for agent in $AGENTS; do echo "$OUT/$suite-$agent"; done) --out "$OUT/compare-$suite"
done
