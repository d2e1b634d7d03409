# Set-up is part of every target: a fresh clone needs nothing but the interpreter and network
# access to the package registry. A second run only re-installs when pyproject.toml changed.
#
# The lines the package supports, the one place they are listed: <Python X.Y>:<cryptofeed version>.
# Each line gets its own virtual environment, .venv-X.Y, with that cryptofeed pinned.
LINES := 3.11:2.4.1 3.12:2.5.0 3.13:3.0.1

PYTHON ?= python3
# The interpreter PYTHON names (tools/find_python.sh also finds pyenv installs that are not selected).
PY_EXE := $(shell tools/find_python.sh $(PYTHON))
PYVER := $(if $(PY_EXE),$(shell $(PY_EXE) -c 'import sys; print("%d.%d" % sys.version_info[:2])'))
# The line's cryptofeed; `make test PYTHON=... CRYPTOFEED=...` runs another combination.
CRYPTOFEED ?= $(patsubst $(PYVER):%,%,$(filter $(PYVER):%,$(LINES)))
VENV := .venv-$(PYVER)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-cryptofeed-$(CRYPTOFEED)
WHEELHOUSE := $(VENV)/wheelhouse
# The suite mostly waits on sockets and processes: 8 workers on the machine's 2 cores (with 4 a
# core stayed half idle), each stealing work from the others when its own runs out.
XDIST ?= -n 8 --dist worksteal
PYTEST_ARGS ?=
# Bytecode caches: without them every worker and every process a test starts (demos, simulators,
# CLI checks) compiles the package and the tests again; that was a fifth of the suite's CPU time.
unexport PYTHONDONTWRITEBYTECODE
# test-lines runs every line of LINES but those named here (Python versions, e.g. WITHOUT=3.13).
WITHOUT ?=

.PHONY: test test-lines lines demo demo-live install services clean

install: services $(STAMP)

# The database servers the backend tests start (tests/integration/services.py): redis-server and
# PostgreSQL's server binaries (initdb, postgres). Installed with apt-get when missing and this is
# root (as on CI); otherwise an error says what to install. Checked by `make install` and before
# every test run (cheap when present); the demos do not need them.
SERVICE_PACKAGES := redis-server postgresql
services:
	@missing=; \
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "services: installing$$missing (apt-get)"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SERVICE_PACKAGES) >/dev/null || exit 1; \
		else \
			echo "error: the backend tests need a Redis server and PostgreSQL's server binaries; missing:$$missing." >&2; \
			echo "       Install them (Debian/Ubuntu: sudo apt-get install $(SERVICE_PACKAGES)), or run make as root to have them installed." >&2; \
			exit 1; \
		fi; \
	fi

$(STAMP): pyproject.toml setup.py
	@test -n "$(PY_EXE)" || { echo "error: no Python interpreter '$(PYTHON)' on this machine (PATH or pyenv)" >&2; exit 1; }
	@test -n "$(CRYPTOFEED)" || { echo "error: Python $(PYVER) ($(PY_EXE)) is not a line of LINES ($(LINES)): pass CRYPTOFEED=<version>" >&2; exit 1; }
	test -x $(PY) || $(PY_EXE) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23.1" "setuptools>=68" wheel
	$(PY) -m pip install --quiet -e '.[dev]' "cryptofeed==$(CRYPTOFEED)"
	# Wheels of the runtime dependencies, so the install-mode tests can build fresh virtual
	# environments offline (cryptofeed 2.4.1 is published as an sdist only): the line's cryptofeed.
	rm -rf $(WHEELHOUSE)
	$(PY) -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) "cryptofeed==$(CRYPTOFEED)" pynacl aiohttp "websockets>=15" \
		msgspec "pydantic>=2" "python-socks[asyncio]" aiohttp-socks pyyaml trustme prometheus_client "setuptools>=77" wheel
	rm -f $(VENV)/.installed-cryptofeed-*
	touch $(STAMP)

# The suite on one line: PYTHON's (python3 unless given), in parallel.
test: services $(STAMP)
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# The suite on each line of LINES in turn (less WITHOUT); every line runs, then a summary of
# wall times; fails when any line failed, a missing interpreter included.
test-lines:
	@failed=; summary=; total_start=$$(date +%s); \
	for line in $(filter-out $(addsuffix :%,$(WITHOUT)),$(LINES)); do \
		version=$${line%%:*}; cryptofeed=$${line#*:}; start=$$(date +%s); \
		echo "==== line: Python $$version + cryptofeed $$cryptofeed"; \
		if $(MAKE) --no-print-directory test PYTHON=python$$version CRYPTOFEED=$$cryptofeed; then result=passed; \
		else result=FAILED; failed="$$failed $$version"; fi; \
		summary="$$summary\n  Python $$version + cryptofeed $$cryptofeed: $$result in $$(( $$(date +%s) - start )) s"; \
	done; \
	printf "==== lines:$$summary\n  total: $$(( $$(date +%s) - total_start )) s\n"; \
	if [ -n "$$failed" ]; then echo "error: line(s) failed:$$failed" >&2; exit 1; fi

# The lines, the interpreter each one finds here and its virtual environment.
lines:
	@for line in $(LINES); do \
		version=$${line%%:*}; exe=$$(tools/find_python.sh python$$version) || exe='MISSING'; \
		echo "Python $$version + cryptofeed $${line#*:}: $$exe -> .venv-$$version"; \
	done

# Offline: the bundled simulator over TLS on loopback, about 20 s of live output, then metrics.
demo: $(STAMP)
	$(PY) examples/backpack_demo.py $(DEMO_ARGS)

# The same demo against the real exchange (needs network access Backpack serves).
demo-live: $(STAMP)
	$(PY) examples/backpack_demo.py --live $(DEMO_ARGS)

clean:
	rm -rf .venv .venv-* build *.egg-info
