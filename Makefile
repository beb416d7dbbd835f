# Every target does its own set-up and is fast when it is already done.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOXIPROXY_VERSION := 2.12.0
INTEROP := tests/interop

.PHONY: setup install image redis-server chromium debootstrap demo test test-fast lint fmt clean

setup: $(VENV)/.installed $(BIN)/toxiproxy-server $(INTEROP)/node_modules/.installed redis-server chromium \
  $(VENV)/wheelhouse/.built

# Debian's redis-server, for `pubsub: redis` and its tests (installed when we may, named if not).
redis-server:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else echo "redis-server is needed (pubsub: redis): sudo apt-get install redis-server" >&2; exit 3; fi; }

# Debian's chromium, for the test that opens a report in a headless browser (same rule).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends -o DPkg::Lock::Timeout=600 chromium; \
	  else echo "chromium is needed for the report test: sudo apt-get install chromium" >&2; exit 3; fi; }

# Debian's debootstrap, for the base of the node image (`make image`; same rule as redis-server).
debootstrap:
	@command -v debootstrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends -o DPkg::Lock::Timeout=600 debootstrap; \
	  else echo "debootstrap is needed for make image: sudo apt-get install debootstrap" >&2; exit 3; fi; }

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# What worker hosts (clients.hosts) install: this harness and its dependencies as wheels, made
# again whenever the code changes (a host's install is checked against the code's digest).
$(VENV)/wheelhouse/.built: pyproject.toml $(shell find harness server_under_test -name '*.py' 2>/dev/null) | $(VENV)/.installed
	$(BIN)/harness wheelhouse $(VENV)/wheelhouse
	touch $@

# The real Toxiproxy server, built from the Go module registry with its version stamped in
# (a plain `go install` would report "git"), renamed from `server` to `toxiproxy-server`.
$(BIN)/toxiproxy-server: | $(VENV)/.installed
	@command -v go >/dev/null || { echo "go (>= 1.23) is needed to build toxiproxy-server" >&2; exit 3; }
	rm -rf $(VENV)/gobin && mkdir -p $(VENV)/gobin
	GOBIN=$(abspath $(VENV)/gobin) GOFLAGS=-mod=mod go install \
	  -ldflags="-X github.com/Shopify/toxiproxy/v2.Version=$(TOXIPROXY_VERSION)" \
	  github.com/Shopify/toxiproxy/v2/cmd/server@v$(TOXIPROXY_VERSION)
	mv $(VENV)/gobin/server $@
	rm -rf $(VENV)/gobin
	$@ -version

$(INTEROP)/node_modules/.installed: $(INTEROP)/package.json $(INTEROP)/package-lock.json
	cd $(INTEROP) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# What `harness run` needs: the venv and toxiproxy-server (no Node, no Redis).
install: $(VENV)/.installed $(BIN)/toxiproxy-server

# The reference node image for `cluster.backend: docker` and the docker-compose.yml (a Docker
# engine must answer; the base image comes from debootstrap the first time, ~1 min, as root).
image: install debootstrap
	images/build-image.sh $(BIN)/python $(BIN)/toxiproxy-server

# The demo needs only what it uses.
demo: install
	$(BIN)/harness run scenarios/quickstart.yaml

test: setup
	$(BIN)/python -m pytest -q

# The inner loop: everything but the whole-scenario runs marked slow.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(INTEROP)/node_modules .mypy_cache .ruff_cache .pytest_cache
