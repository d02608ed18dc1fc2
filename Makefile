# The two commands a newcomer needs:  make demo   and   make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint unit system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

## Run the hub against three simulated clusters (no Redis or cluster needed).
demo: $(STAMP)
	$(BIN)/mcobs demo

## Everything CI runs: lint, types, layer contract, the whole test suite.
test: $(STAMP) system-deps lint unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest

## Debian packages the tests start or call (kubectl comes preinstalled on these machines).
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v dig >/dev/null || missing="$$missing dnsutils"; \
	test -x /usr/sbin/unbound || missing="$$missing unbound"; \
	test -x /usr/sbin/dnsmasq || missing="$$missing dnsmasq-base"; \
	command -v named-checkconf >/dev/null || missing="$$missing bind9-utils"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v shellcheck >/dev/null || missing="$$missing shellcheck"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  for unit in unbound prometheus prometheus-alertmanager prometheus-node-exporter; do \
	    (systemctl disable --now $$unit || service $$unit stop) >/dev/null 2>&1 || true; \
	  done; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info
