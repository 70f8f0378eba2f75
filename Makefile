# Two commands do everything on a fresh machine: `make suite` and `make test`.
# They create .venv, install the project and its pinned torch build, then run.

PYTHON ?= python3
VENV ?= .venv
# The torch build to install. These versions lie on this project's machines' disk; on another
# machine pass any compatible build, e.g. make suite TORCH_SPEC="torch torchvision".
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
SUITE ?= digits-5split
ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install suite site test test-all test-under-load bench lint gpu-wheels clean help

help:
	@echo "make suite [SUITE=digits-5split] [ARGS='--method lwf --seeds 1']  run a suite, build site/"
	@echo "make site                                   rebuild site/index.html from results/"
	@echo "make test                                   run the default test suite"
	@echo "make test-all                               also the slow tests"
	@echo "make test-under-load                        make test beside two CPU-bound processes"
	@echo "make bench [SUITE=digits-5split] [ARGS='--rounds 3']  Ray's overhead vs. an in-process loop"
	@echo "make lint                                   ruff"
	@echo "make gpu-wheels                             wheels benchmarks/gpu_check.sh carries to a GPU machine"

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

suite: $(STAMP)
	$(BIN)/cilbench run --suite $(SUITE) $(ARGS)

site: $(STAMP)
	$(BIN)/cilbench site

test: $(STAMP)
	$(BIN)/python -m pytest -q $(ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "" $(ARGS)

# Proof that no test depends on the machine's speed: the default tests beside two CPU burners.
test-under-load: $(STAMP)
	benchmarks/test_under_load.sh $(ARGS)

# Ray Tune's overhead: a small grid of SUITE through Ray and in-process, interleaved.
bench: $(STAMP)
	$(BIN)/python benchmarks/ray_overhead.py --suite $(SUITE) $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check harness methods tests benchmarks
	$(BIN)/ruff format --check harness methods tests benchmarks

# The pure-Python packages a GPU machine's stock Python lacks (it has torch, torchvision,
# numpy, pyyaml, scikit-learn): downloaded into .whl/ for benchmarks/gpu_check.sh to install.
gpu-wheels: $(STAMP)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: -d .whl \
		"torch-pruning==$$($(BIN)/python -c 'from importlib.metadata import version; print(version("torch-pruning"))')" \
		"ptflops==$$($(BIN)/python -c 'from importlib.metadata import version; print(version("ptflops"))')"

clean:
	rm -rf $(VENV) .pytest_cache
	cd site && find . -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
