# Two entry points on a fresh clone: `make book` (the main job) and `make test`.
# Each creates .venv with the pinned requirements when it is missing.
#   make book [SCALE=book] [DEVICE=cpu|cuda] [RETRAIN=1 | RECOMPUTE=1] [JOBS=1]   (JOBS chapters at once)
#     default: reuse data/ (checkpoints, tuned rates, test curves); RECOMPUTE=1 tunes and tests again
#     with the committed optimizers; RETRAIN=1 meta-trains them again too
#   make test   [TEST_JOBS=2] [SMOKE_JOBS=2]   (pytest on TEST_JOBS workers, then the smoke-scale chapters, SMOKE_JOBS at a time)
#   make lab     (JupyterLab on the chapter sources in notebooks/, with the project's kernel)

VENV    ?= .venv
PYTHON  := $(VENV)/bin/python
SCALE   ?= book
DEVICE  ?= cpu
RETRAIN ?= 0
RECOMPUTE ?= 0
JOBS    ?= 1
SMOKE   ?= .smoke
# make test's tests and chapters, two at a time (one thread each on a 2-core machine)
TEST_JOBS ?= 2
SMOKE_JOBS ?= 2

# Datasets: read from a local mirror when there is one (here: ../shared/data), else torchvision downloads.
L2L_DATA_MIRROR ?= $(wildcard $(abspath ../shared/data))
export L2L_DATA_MIRROR
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: book test pytest smoke bench lab clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PYTHON) -m pip install -q -r requirements.txt 2>&1 | grep -v "is ignored" || true
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v -e "is ignored" -e "!!" -e "^\s*$$" -e "\*\*\*" -e "Please be careful" -e "name as your package" -e "with strategy" -e "BuildBackendWarning" || true
	$(PYTHON) -c "import torch, torchvision, papermill, jupyter_book, jupyterlab, xdist, l2l"
	touch $@

book: $(VENV)/.installed
	$(PYTHON) -m l2l book --scale $(SCALE) --device $(DEVICE) $(if $(filter 1,$(RETRAIN)),--retrain) $(if $(filter 1,$(RECOMPUTE)),--recompute) --jobs $(JOBS) --build

test: pytest smoke

pytest: $(VENV)/.installed
	$(PYTHON) -m pytest -n $(TEST_JOBS) -m "not serial"
	$(PYTHON) -m pytest -m serial || [ $$? -eq 5 ]  # 5: none selected (where Ray, an optional extra, is absent: a plain `pip install -e .`)

# every chapter at smoke scale into $(SMOKE)/, SMOKE_JOBS at a time, then a strict (warnings are errors) build of that copy
smoke: $(VENV)/.installed
	rm -rf $(SMOKE)
	$(PYTHON) -m l2l book --scale smoke --device $(DEVICE) --out $(SMOKE) --jobs $(SMOKE_JOBS) --build

# rerun a chapter yourself: it reuses data/checkpoints and data/results exactly as `make book` does
lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

bench: $(VENV)/.installed
	$(PYTHON) -m l2l bench --device $(DEVICE)

clean:
	rm -rf _build $(SMOKE)
