# Set-up lives here so a fresh machine needs only `make demo` or `make test`.
# torch is installed first, pinned, so pip keeps it instead of pulling a CUDA build;
# GPU users: TORCH="torch --index-url https://download.pytorch.org/whl/cu124" make ...
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
# dev's OpenCV is the contrib build, whose cv2 the plain build's would overwrite
	if $(PY) -m pip show --quiet opencv-python-headless 2>/dev/null; then \
		$(PY) -m pip uninstall --quiet --yes opencv-python-headless; fi
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: install
	$(PY) examples/demo.py --out out

lint: install
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/lint-imports

test: install lint
	$(PY) -m pytest -q

bench: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/optimize.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
