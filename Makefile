# Set-up is part of every target: a fresh clone needs nothing but python3 and network access
# to the package registry. A second run only re-installs when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WHEELHOUSE := $(VENV)/wheelhouse
PYTEST_ARGS ?=

.PHONY: test demo demo-live install clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23.1" "setuptools>=68" wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	# Wheels of the runtime dependencies, so the install-mode tests can build fresh
	# virtual environments offline (cryptofeed 2.4.1 is published as an sdist only).
	$(PY) -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) "cryptofeed==2.4.1" pynacl aiohttp "websockets>=15" \
		msgspec "pydantic>=2" "python-socks[asyncio]" aiohttp-socks pyyaml trustme "setuptools>=77" wheel
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Offline: the bundled simulator over TLS on loopback, about 20 s of live output, then metrics.
demo: $(STAMP)
	$(PY) examples/backpack_demo.py $(DEMO_ARGS)

# The same demo against the real exchange (needs network access Backpack serves).
demo-live: $(STAMP)
	$(PY) examples/backpack_demo.py --live $(DEMO_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
