# Two commands do all the set-up on a fresh machine (Python >= 3.11):
#   make demo   install into .venv and serve the demo on the embedded default models (no network)
#   make test   install into .venv (with test extras, and Debian's chromium for the browser test), lint, run the tests
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: demo test lint install browser web-deps default-models

$(VENV)/.installed: pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test,pretrained]" -c .ci/constraints.txt
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed data/models/side-default/model.safetensors data/models/scratch-default/model.safetensors
	$(PY) app.py

test: lint browser web-deps
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# The browser test drives Debian's chromium with Playwright (Playwright's own browser download needs a network).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium not found: the browser test needs Debian's chromium (skipped without it; .ci/run fails)"; fi; }

# The in-browser page's test grades with onnxruntime-web from npm, the release `phonegrade web` pins
# (phonegrade.web.ORT_VERSION), installed under build/ (not committed).
ORT_WEB_VERSION := $(shell sed -n 's/^ORT_VERSION = "\(.*\)"/\1/p' phonegrade/web.py)
ORT_WEB := build/ort-web/node_modules/onnxruntime-web/package.json
web-deps:
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; \
	  else echo "npm not found: the in-browser page's test needs it (skipped without it; .ci/run fails)"; fi; }
	@if command -v npm >/dev/null && ! grep -qs '"version": "$(ORT_WEB_VERSION)"' $(ORT_WEB); then \
	  npm install --prefix build/ort-web --no-save --no-audit --no-fund --loglevel=error \
	    onnxruntime-web@$(ORT_WEB_VERSION); fi

# The embedded default models (data/models/, committed) are made from real photos that are not in this repository:
# SIDE_REAL and SCRATCH_REAL name their folders (several each, combined). Each rule cross-validates its recipe
# (recipes/) twice, stratified 5-fold and leaving one source out (each folder's labels.csv `source_repo`; a folder
# without one is one source), then trains the final model on all the photos but a 10 % sanity split, its card
# reporting both, and only then replaces the committed model. Without the photos it stops and keeps the committed
# model. `make default-models` rebuilds both (`make default-model-side`: one).
SHARED_DATA ?= ../shared/data
SIDE_REAL ?= $(SHARED_DATA)/side-real-dev $(SHARED_DATA)/side-real-extra
SCRATCH_REAL ?= $(SHARED_DATA)/scratch-real-dev $(SHARED_DATA)/scratch-real-extra
REAL_side = $(SIDE_REAL)
REAL_scratch = $(SCRATCH_REAL)
# The scratch photos are all phone fronts (screens close up, cracked phones in hands): extra training fronts for the
# side model, so that the photos the scratch model grades are called fronts (measured: docs/models.md).
SCRATCH_FRONTS = $(filter-out $(SIDE_REAL),$(wildcard $(SCRATCH_REAL)))
# Synthetic renders (`phonegrade synth`: phones from the front and back, look-alikes such as tablets, laptops,
# monitors, consoles, remotes and cards) as extra training for the side model: 200 per class raised its accuracy on
# photos of sources it never saw from 0.877 to 0.897 (docs/models.md). Made here, the same every time (fixed seed).
SIDE_RENDER_COUNT = 200
SIDE_RENDER_SIZE = 320
SIDE_RENDER_SEED = 7
SIDE_RENDERS = runs/side-renders-$(SIDE_RENDER_COUNT)-$(SIDE_RENDER_SIZE)px-seed$(SIDE_RENDER_SEED)
EXTRA_side = --extra-train $(addsuffix =front,$(SCRATCH_FRONTS)) $(SIDE_RENDERS)
EXTRA_scratch =
# Temperature scaling (`--calibrate-from runs/%-default-loso`) is left out: fitted on the leave-one-source-out run, it
# made neither model's probabilities better calibrated on the sources left out (docs/models.md).
CALIBRATE_side =
CALIBRATE_scratch =
# What the photos are and their terms of use, in words, for the card and the demo page (the counts come from the
# data itself). Only the project's own development folders are described here; name your own with SIDE_WORDS /
# SIDE_TERMS and SCRATCH_WORDS / SCRATCH_TERMS.
ifeq ($(SIDE_REAL),$(SHARED_DATA)/side-real-dev $(SHARED_DATA)/side-real-extra)
SIDE_WORDS ?= real photos from four sources: web photos of phones (in hands, on desks, product shots) and of \
	look-alikes held in hands (books, calculators, cards, remotes, wallets); e-waste photos of phones, laptops, \
	monitors, keyboards and mice on desks; photos of phone fronts and backs on desks and in hands (white, glossy and \
	cased backs); and one ImageNet sample photo per class for other objects, rooms, furniture, food, animals and nature
SIDE_TERMS ?= web photos of phones and look-alikes: no licence stated, development and evaluation use only; \
	EcoEra-FourFront/EcoEra and joao-albano/farm-tech-rede-neural (Roboflow exports): CC BY 4.0, attribution \
	required; EliSchwartz/imagenet-sample-images: ImageNet's terms, non-commercial research and education only
endif
ifeq ($(SCRATCH_REAL),$(SHARED_DATA)/scratch-real-dev $(SHARED_DATA)/scratch-real-extra)
SCRATCH_WORDS ?= real photos of phone screens: lab photos of scratched, oily, stained and clean screens (MSD, \
	Peking University), crowd-sourced photos of cracked phones (DataCluster Labs), web photos of cracked and clean \
	phone fronts, and photos of cracked and clean phones as people take them (in hands, on tables, in reviews)
SCRATCH_TERMS ?= MSD lab photos (Peking University): academic use, cite FDSNet (ICASSP 2022); DataCluster Labs \
	photos (Roboflow): CC BY 4.0, attribution required; NanoNets and mahamatnoumai/detect_phone_screen web photos: \
	no licence stated, development and evaluation use only
endif
SIDE_WORDS ?= real photos ($(notdir $(SIDE_REAL)))
SCRATCH_WORDS ?= real photos ($(notdir $(SCRATCH_REAL)))
# With the scratch photos as extra fronts (EXTRA_side), their description and terms join the side model's.
ifneq ($(SCRATCH_FRONTS),)
SIDE_WORDS := $(SIDE_WORDS); plus, as extra fronts, $(SCRATCH_WORDS)
SIDE_TERMS := $(SIDE_TERMS); $(SCRATCH_TERMS)
endif
SIDE_WORDS := $(SIDE_WORDS); plus 600 synthetic renders made by phonegrade (phonegrade synth: phones seen from the \
	front and back, and look-alikes)
SIDE_TERMS := $(SIDE_TERMS); the synthetic renders: made by this project, Apache-2.0
WORDS_side = $(SIDE_WORDS)
WORDS_scratch = $(SCRATCH_WORDS)
TERMS_side = $(SIDE_TERMS)
TERMS_scratch = $(SCRATCH_TERMS)

data/models/%-default/model.safetensors: | $(VENV)/.installed
	$(MAKE) default-model-$*

$(SIDE_RENDERS): | $(VENV)/.installed
	$(PY) -m phonegrade synth --task side --out $@ --per-class $(SIDE_RENDER_COUNT) --size $(SIDE_RENDER_SIZE) \
	  --seed $(SIDE_RENDER_SEED)

default-model-side: | $(SIDE_RENDERS)
default-model-%: | $(VENV)/.installed
	@for d in $(REAL_$*); do test -d "$${d%=*}" || { echo "$${d%=*} is not a folder: the $* default model is trained \
	on real photos that are not in this repository. Set $(shell echo $* | tr a-z A-Z)_REAL to them; the committed \
	model is kept."; exit 2; }; done
	rm -rf runs/$*-default-cv runs/$*-default-loso runs/$*-default
	$(PY) -m phonegrade crossval --config recipes/$*-default.yaml --data $(REAL_$*) $(EXTRA_$*) \
	  --folds 5 --seeds 0 --no-progress --output-dir runs/$*-default-cv
	$(PY) -m phonegrade crossval --config recipes/$*-default.yaml --data $(REAL_$*) $(EXTRA_$*) \
	  --group-by source_repo --no-progress --output-dir runs/$*-default-loso
	$(PY) phonegrade/train.py --config recipes/$*-default.yaml --data $(REAL_$*) $(EXTRA_$*) --val-fraction 0.1 \
	  --crossval-summary runs/$*-default-cv/crossval.json runs/$*-default-loso/crossval.json $(CALIBRATE_$*) \
	  --data-description "$(WORDS_$*)" --data-terms "$(TERMS_$*)" --no-progress --output-dir runs/$*-default
	rm -rf runs/$*-default/checkpoints
	rm -rf data/models/$*-default && mv runs/$*-default data/models/$*-default

default-models: default-model-side default-model-scratch
