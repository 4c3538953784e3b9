# ConvLens: `make run` starts API + dashboard; `make test` runs the full suite (browser tests included).
# Everything lives in .venv/ at the repository root; it is created and filled when missing.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := chromium chromium-driver redis-server g++ python3.11-dev
export CONVLENS_API_HOST ?= 127.0.0.1
export CONVLENS_API_PORT ?= 8000
export CONVLENS_DASHBOARD_HOST ?= 127.0.0.1
export CONVLENS_DASHBOARD_PORT ?= 8050
PYTEST_ARGS ?=
# The README's screenshots (docs/screenshots/<name>.png), taken by the browser tests in tests/e2e/.
README_SCREENSHOTS := explore-upload explore-grid-sorted explore-filter-detail explore-upload-error \
	filter-insights-digits deepvis-lite0-verdict projections-tsne audit-digits
SCREENSHOTS_DIR := test-artifacts/screenshots

.PHONY: help install system-deps models run api dashboard test test-fast screenshots lint format bench clean \
	deploy-deps images test-deploy test-deploy-gpu

help:
	@echo "make run      set up .venv if needed, then start the API and the dashboard on localhost"
	@echo "make test     set up .venv and system packages if needed, then run the full test suite"
	@echo "make screenshots  run the browser tests, then copy the README's screenshots to docs/screenshots/"
	@echo "make lint     ruff + mypy on the core"
	@echo "make bench    run the benchmarks in bench/ (ratios recorded in docs/BENCHMARKS.md)"
	@echo "make images   build the api, worker and dashboard images (docker, else podman; offline)"
	@echo "make test-deploy  build the images, bring the compose stack up for real and test it (docs/DEPLOYMENT.md)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalled whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Chromium for the browser tests, redis-server for the distributed-job tests and g++ with Python's headers for
# compiled inference (Inductor builds its CPU kernels with them; tests/engine/test_compiled.py) (Debian packages).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	test -f "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" \
	  || missing="$$missing python3.11-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The bundled models: Lite0 comes with its pip package; digits_cnn (seeded, ~5 s), the DCGAN dcgan_digits
# (seeded, 1,500 steps: about 1-4 min on 2 cores, depending on load) and seq_rnn, seq_lstm and seq_gru
# (seeded, 80 epochs each; minutes on 2 cores, see README) are trained here once, each in a process on
# portable kernels (server/zoo/training.py), so every x86-64 machine trains the same weights.
models: $(STAMP)
	@test -f models/digits_cnn/final.safetensors || $(PY) -m server.zoo.digits
	@test -f models/dcgan_digits/final.json || $(PY) -m server.zoo.dcgan
	@test -f models/seq_rnn/final.safetensors -a -f models/seq_lstm/final.safetensors -a -f models/seq_gru/final.safetensors \
	  || $(PY) -m server.zoo.recurrent

run: models
	@echo ""
	@echo "  ConvLens API:       http://$(CONVLENS_API_HOST):$(CONVLENS_API_PORT)   (OpenAPI docs: /docs)"
	@echo "  ConvLens dashboard: http://$(CONVLENS_DASHBOARD_HOST):$(CONVLENS_DASHBOARD_PORT)"
	@echo "  (Ctrl-C stops both)"
	@echo ""
	@trap 'kill 0' INT TERM EXIT; \
	$(PY) -m server & \
	CONVLENS_API_URL=$${CONVLENS_API_URL:-http://$(CONVLENS_API_HOST):$(CONVLENS_API_PORT)} $(PY) -m dashboard & \
	wait

api: models
	$(PY) -m server

dashboard: $(STAMP)
	$(PY) -m dashboard

# The deployment tests (tests/deploy/, marker `deploy`) are deselected here; `make test-deploy` runs them.
test: system-deps models
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: models
	$(PY) -m pytest -m "not slow and not e2e and not integration" $(PYTEST_ARGS)

# Tests write screenshots only under test-artifacts/; refreshing the README's images is done on purpose.
screenshots: system-deps models
	rm -rf $(SCREENSHOTS_DIR)
	$(PY) -m pytest tests/e2e -m e2e -p no:cacheprovider $(PYTEST_ARGS)
	@mkdir -p docs/screenshots
	@for name in $(README_SCREENSHOTS); do \
	  cp $(SCREENSHOTS_DIR)/$$name.png docs/screenshots/$$name.png || exit 1; \
	  echo "docs/screenshots/$$name.png"; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: models
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# The real deployment: podman (Debian) and debootstrap, then the images from the one Dockerfile, then the
# compose stack brought up and driven through its published ports (tests/deploy/test_stack.py).
deploy-deps:
	.ci/deploy/deps.sh

images: deploy-deps $(STAMP)
	.ci/deploy/images.sh

test-deploy: images
	$(PY) -m pytest tests/deploy -m deploy --deploy -p no:cacheprovider $(PYTEST_ARGS)

# On a host with an NVIDIA GPU (driver + container toolkit): the same, with docker-compose.gpu.yml.
test-deploy-gpu: images
	$(PY) -m pytest tests/deploy -m deploy --deploy --deploy-gpu -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache test-artifacts
