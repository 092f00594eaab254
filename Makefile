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

.PHONY: demo test setup lint benchmark clean

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

test: setup
	bash .ci/setup_slurm.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/snakemake --lint

benchmark: setup
	$(BIN)/python benchmarks/bench_pipeline.py --stages 10000 4000

clean:
	rm -rf results logs .snakemake
