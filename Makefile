# Two commands do all the set-up on a fresh machine (Python >= 3.11):
#   make demo   install into .venv and serve the demo on the embedded default models (no network)
#   make test   install into .venv (with test extras, and Debian's chromium for the browser test) and run the tests
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
SYNTH := runs/synth

.PHONY: demo test install browser default-models

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed data/models/side-default/model.safetensors data/models/scratch-default/model.safetensors
	$(PY) app.py

test: $(VENV)/.installed browser
	$(PY) -m pytest

# The browser test drives Debian's chromium with Playwright (Playwright's own browser download needs a network).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium not found: install Debian's chromium for the browser test (it is skipped without it)"; fi; }

# The embedded default models (committed; this rule rebuilds one if it is missing, `make default-models` both).
data/models/%-default/model.safetensors: | $(VENV)/.installed
	$(PY) -m phonegrade.cli synth --task $* --out $(SYNTH)-$* --per-class 150 --size 128 --seed 0 --overwrite
	$(PY) phonegrade/train.py --task $* --arch wearnet --weights none --data $(SYNTH)-$* --epochs 45 \
	  --scheduler cosine --patience 0 --lr 2e-3 --image-size 128 --output-dir data/models/$*-default --no-progress \
	  --data-description "synthetic renders from \`phonegrade synth\` (150 per class), not real photos"
	rm -rf data/models/$*-default/checkpoints

default-models:
	rm -rf data/models/side-default data/models/scratch-default
	$(MAKE) data/models/side-default/model.safetensors data/models/scratch-default/model.safetensors
