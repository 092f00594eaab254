# Two commands do all set-up from a fresh clone:
#   make demo   run the bundled demo (offline smoke run: random weights, paths say "random")
#   make test   run the test suite (starts a real single-node SLURM cluster for its tests)
# `make demo WEIGHTS=pretrained` runs the demo with the real weights (network once, or local
# checkpoints named in config.yaml). Every target is safe to run again.

VENV ?= .venv
PYTHON ?= python3
WEIGHTS ?= random
CORES ?= all
BIN := $(VENV)/bin

.PHONY: demo run plan test setup lint benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	bash scripts/setup_system.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/python -m neuron_concepts.wordnet
	touch $@

demo: setup
	$(BIN)/snakemake --cores $(CORES) --config weights=$(WEIGHTS)

# Your own experiment, nothing of the demo merged in: CONFIG replaces config.yaml
# (snakemake --replace-workflow-config), so start it from a copy of config.yaml.
#   make run CONFIG=mine.yaml [PROFILE=profiles/slurm]
CONFIG ?=
PROFILE ?= profiles/workstation
run: setup
	@test -n "$(CONFIG)" || { echo "make run CONFIG=your.yaml (a full config, e.g. an edited copy of config.yaml)"; exit 2; }
	$(BIN)/snakemake --profile $(PROFILE) --configfile $(CONFIG) --replace-workflow-config

# The plan of an experiment: per-rule jobs, time, memory, disk, wall time on 1 and NODES nodes.
#   make plan [CONFIG=mine.yaml] [DEVICE=h100] [NODES=10] [PLAN_ARGS="--images imagenet_val=50000"]
DEVICE ?= cpu-2core
NODES ?= 10
plan: setup
	$(BIN)/python benchmarks/scale_plan.py --device $(DEVICE) --nodes $(NODES) \
		$(if $(CONFIG),--configfile $(CONFIG) --replace-workflow-config,--config weights=$(WEIGHTS)) $(PLAN_ARGS)

test: setup
	bash .ci/setup_slurm.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/lint-imports

benchmark: setup
	$(BIN)/python benchmarks/bench_pipeline.py --stages 10000 4000

clean:
	rm -rf results logs .snakemake
