# Two commands on a fresh machine with Python 3.11 + pip: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYNTHFOOD := data/synthfood

export NO_ALBUMENTATIONS_UPDATE := 1
export HF_HUB_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: install demo test synthfood clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

$(SYNTHFOOD)/synthfood.json: | $(STAMP)
	$(BIN)/python data_prep/make_synthfood.py --out $(SYNTHFOOD)

synthfood: $(SYNTHFOOD)/synthfood.json

demo: $(STAMP) synthfood
	$(BIN)/foodmtl train experiments/synthfood/demo.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf runs wandb .pytest_cache
