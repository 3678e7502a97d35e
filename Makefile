# Set-up and the two entry points the README promises.
#   make train   train the seed preset on the shared CIFAR-10 copy when it is there, else on CIFAR-10
#                downloaded into the cache (progress bar, MD5 check); creates .venv if missing
#   make test    run the test suite (creates .venv if missing)
#   make docs    build the documentation site into site/ with mkdocs build --strict (creates .venv if missing)
PYTHON ?= python3
VENV   ?= .venv
SHARED_DATA ?= ../shared/data/cifar10-jpeg.tar.gz
DATA   ?= $(wildcard $(SHARED_DATA))
TRAIN_ARGS ?=
BIN     = $(VENV)/bin

.PHONY: install train test docs clean

install: $(VENV)/.installed

# torch is pinned to the CPU build that lies on this workplace's disk; pip takes
# it from there instead of downloading a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[export,dev,postgres,dashboard,tensorboard,docs]'
	touch $@

train: install
	$(BIN)/cifarlab train --preset seed $(if $(DATA),--data $(DATA)) $(TRAIN_ARGS)

test: install
	$(BIN)/python -m pytest -q

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict  # the warning: Material's notice about MkDocs 2

clean:
	rm -rf $(VENV) build site *.egg-info
