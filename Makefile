# Two commands on a fresh machine with Python 3.11 + pip: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYNTHFOOD := data/synthfood
SYNTHFOOD_MAFOOD121 := data/synthfood_mafood121

export NO_ALBUMENTATIONS_UPDATE := 1
export HF_HUB_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: install demo test synthfood synthfood-mafood121 mafood121-synth clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# SynthFood version 3 added its validation list: an older data/synthfood is drawn again.
SYNTHFOOD_V3 := $(SYNTHFOOD)/val.txt

$(SYNTHFOOD_V3): | $(STAMP)
	$(BIN)/python data_prep/make_synthfood.py --out $(SYNTHFOOD) --overwrite

synthfood: $(SYNTHFOOD_V3)

demo: $(STAMP) synthfood
	$(BIN)/foodmtl train experiments/synthfood/demo.yaml

# MAFood-121's protocol on SynthFood written in its layout (docs/datasets.md, MAFood-121).
$(SYNTHFOOD_MAFOOD121)/synthfood.json: | $(STAMP)
	$(BIN)/python data_prep/make_synthfood_mafood121.py --out $(SYNTHFOOD_MAFOOD121) --overwrite

synthfood-mafood121: $(SYNTHFOOD_MAFOOD121)/synthfood.json

mafood121-synth: $(STAMP) synthfood-mafood121
	$(BIN)/foodmtl train experiments/mafood121/synth.yaml

test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf runs wandb .pytest_cache
