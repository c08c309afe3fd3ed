# robosandbox developer entry points. Every target sets up .venv first if needed.
SHELL := /bin/bash
VENV := .venv
ACTIVATE := source $(VENV)/bin/activate
SRC := $(shell find src tools -type f -not -path '*/test/*' -not -name '*.pyc' -not -path '*/__pycache__/*') requirements-venv.lock
STAMP := $(VENV)/.robosandbox-setup

.PHONY: setup lint test test-fast run bench lock clean

setup: $(STAMP)

$(STAMP): $(SRC)
	tools/setup_venv.sh
	@touch $@

# Style and static errors (ruff.toml), as ament_flake8 would on a ROS install.
lint: $(STAMP)
	$(ACTIVATE) && ruff check .

# The lint gate, then the whole test suite (CI runs exactly this).
test: lint
	$(ACTIVATE) && python -m pytest

# The unit tests: no node processes, under a minute. For the edit-test loop.
test-fast: $(STAMP)
	$(ACTIVATE) && ruff check . && python -m pytest -m 'not nodes'

# The main job.
run: $(STAMP)
	$(ACTIVATE) && robosandbox launch sim_policy

bench: $(STAMP)
	$(ACTIVATE) && python bench/sim_rtf.py && python bench/policy_loop.py && python bench/record_export.py && python bench/hw_loop.py && python bench/teleop.py

# Re-pin requirements-venv.lock from requirements-venv.in.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile --python-version 3.12 --python-platform x86_64-manylinux_2_28 \
	  requirements-venv.in -o requirements-venv.lock

clean:
	rm -rf build install log $(VENV)
