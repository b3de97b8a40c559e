# Two commands do all the set-up on a fresh machine (Python >= 3.11):
#   make demo   install into .venv and serve the demo on the embedded default models (no network)
#   make test   install into .venv (with test extras, and Debian's chromium for the browser test), lint, run the tests
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: demo test lint install browser default-models

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test,pretrained]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed data/models/side-default/model.safetensors data/models/scratch-default/model.safetensors
	$(PY) app.py

test: lint browser
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# The browser test drives Debian's chromium with Playwright (Playwright's own browser download needs a network).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium not found: the browser test needs Debian's chromium (skipped without it; .ci/run fails)"; fi; }

# The embedded default models (data/models/, committed) are made from real photos that are not in this repository:
# SIDE_REAL and SCRATCH_REAL name them. Each rule cross-validates its recipe (recipes/), then trains the final model
# on all the photos but a 10 % sanity split, its card reporting the cross-validation, and only then replaces the
# committed model. Without the photos it stops and keeps the committed model. `make default-models` rebuilds both
# (`make default-model-side`: one).
SIDE_REAL ?= ../shared/data/side-real-dev
SCRATCH_REAL ?= ../shared/data/scratch-real-dev
REAL_side = $(SIDE_REAL)
REAL_scratch = $(SCRATCH_REAL)
# The scratch photos are all phone fronts (lab screens, cracked phones, product shots): more fronts for the side model.
EXTRA_side = $(if $(wildcard $(SCRATCH_REAL)),--extra-train $(SCRATCH_REAL)=front)
KINDS_side =
KINDS_scratch = $(if $(wildcard $(SCRATCH_REAL)/labels.csv),--kinds $(SCRATCH_REAL)/labels.csv)
# What the photos are, in words, for the card and the demo page (the counts come from the data itself). Only the
# project's own development folders are described here; name your own with SIDE_WORDS / SCRATCH_WORDS.
ifeq ($(SIDE_REAL),../shared/data/side-real-dev)
SIDE_WORDS ?= real photos of phones (in hands, on desks, product shots) and of look-alikes held in hands (books, \
	calculators, cards, remotes, wallets), collected from the web for development use, plus the scratch set's \
	photos of phone fronts as extra fronts
endif
ifeq ($(SCRATCH_REAL),../shared/data/scratch-real-dev)
SCRATCH_WORDS ?= real photos of phone screens: lab photos of scratched, oily, stained and clean screens (MSD, \
	Peking University; academic use), crowd-sourced photos of cracked phones (DataCluster Labs, CC BY 4.0) and web \
	photos of cracked and clean phone fronts (development use)
endif
SIDE_WORDS ?= real photos ($(notdir $(SIDE_REAL)))
SCRATCH_WORDS ?= real photos ($(notdir $(SCRATCH_REAL)))
WORDS_side = $(SIDE_WORDS)
WORDS_scratch = $(SCRATCH_WORDS)

data/models/%-default/model.safetensors: | $(VENV)/.installed
	$(MAKE) default-model-$*

default-model-%: | $(VENV)/.installed
	@test -d "$(REAL_$*)" || { echo "$(REAL_$*) is not a folder: the $* default model is trained on real photos \
	that are not in this repository. Set $(shell echo $* | tr a-z A-Z)_REAL to them; the committed model is kept."; exit 2; }
	rm -rf runs/$*-default-cv runs/$*-default
	$(PY) -m phonegrade.cli crossval --config recipes/$*-default.yaml --data $(REAL_$*) $(EXTRA_$*) $(KINDS_$*) \
	  --folds 5 --seeds 0 --no-progress --output-dir runs/$*-default-cv
	$(PY) phonegrade/train.py --config recipes/$*-default.yaml --data $(REAL_$*) $(EXTRA_$*) --val-fraction 0.1 \
	  --crossval-summary runs/$*-default-cv/crossval.json --data-description "$(WORDS_$*)" --no-progress \
	  --output-dir runs/$*-default
	rm -rf runs/$*-default/checkpoints
	rm -rf data/models/$*-default && mv runs/$*-default data/models/$*-default

default-models: default-model-side default-model-scratch
