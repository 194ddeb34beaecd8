# kaggle_pipeline — every target is also `python -m kaggle_pipeline <stage> --help`.
#   make all                 data -> search -> ensemble -> submit on the default competition (quick preset)
#   make stack               VGG19 features -> RandomForest, a voter for submit (WEIGHTS=imagenet|none|<file>)
#   make report              figures and one HTML page -> reports/<competition>/index.html
#   make status              what is on disk: search, runs, stacker, newest submission
#   make download COMPETITION=<slug>; make submit-kaggle COMPETITION=<slug> MESSAGE="..."   (Kaggle's client)
#   make download KAGGLE_DATASET=<owner>/<name>   a labelled dataset from Kaggle -> data/<name>/ (then make dataset)
#   make dataset DATASET=<folder> [DATA=data/<name>] [LABEL_COLUMN=<name>]   a labelled dataset -> a competition with an answer key
#   make test                the test suite
# Variables: DATA NAME PRESET=quick|full EVALS EPOCHS N FOLDS RECIPES THRESHOLD MAX_RUNS HOURS PRECISION TENSORBOARD=1 EARLY_ABORT=0
#            ABORT_MARGIN TTA=0 VOTE=auto|majority|soft|weighted|select|logistic STACK_WEIGHT WEIGHTS STACK_SIZE TREES
#            LAYOUT=npy|folders|filenames|images|csv|json|tfrecords (detected by default) SIZE=<image side> (default: README, Image sizes)
#            SKIP_UNREADABLE=1   (leave out training images that cannot be read, at most 10%; fixed per store)
#            METRIC=auto|accuracy|logloss|auc|f1_macro|f1_micro|f1|qwk|map@3|map@5   (recorded in the store; submit may judge the vote by another)
#            EXECUTOR=local|ray RAY_ADDRESS CPUS_PER_RUN   (make setup-ray installs Ray; make test-ray tests it)
#            EXTRAS=cpu,report,kaggle,dev   (what make setup installs: pyproject.toml's extras; gpu,report,kaggle,test for CUDA)
#            VERBOSE=0|1|2   (warnings only, progress (default), debug detail)
#   make lint                ruff (pyproject.toml's rule set), as CI runs it

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

# Every variable a user sets (command line or environment) is taken as literal text: make expands nothing in
# it ($HOME, $(shell ...) stay as typed) and pastes none of it into shell code. The values reach the recipes
# as environment variables, which the shell only ever expands inside double quotes, each as one argument
# (--name="$NAME", so a value starting with '-' is still the option's value); sub-makes (make all) see the
# same literal text again.
USER_VARIABLES := DATA NAME PRESET EVALS EPOCHS N FOLDS RECIPES THRESHOLD MAX_RUNS HOURS PRECISION TENSORBOARD EARLY_ABORT \
	ABORT_MARGIN TTA VOTE METRIC STACK_WEIGHT WEIGHTS SIZE STACK_SIZE LAYOUT TREES EXECUTOR RAY_ADDRESS CPUS_PER_RUN COMPETITION MESSAGE EXTRAS \
	VERBOSE SKIP_UNREADABLE DATASET KAGGLE_DATASET LABEL_COLUMN
$(foreach variable,$(USER_VARIABLES),$(if $(filter-out undefined,$(origin $(variable))),\
	$(eval override $(variable) := $$(value $(variable)))))

DEFAULT_DATA := data/fashion-mnist
DATA ?= $(DEFAULT_DATA)
PRESET ?= quick
# The extras make setup installs (pyproject.toml); EXTRAS=gpu,report,kaggle,test for an NVIDIA GPU (README, GPU):
# dev pulls in cpu, whose tensorflow-cpu must not be installed beside the GPU build.
EXTRAS ?= cpu,report,kaggle,dev
export $(USER_VARIABLES)

# --option=value, only when the variable is set and not empty; shell code that names the variable, never its text
option = $${$(1):+$(2)="$$$(1)"}
# Prints the command with its arguments, then runs it: each argument reaches the program as it is.
run = set -- $(1); printf '%s\n' "$$*"; exec "$$@"
# VERBOSE=0: warnings and errors only (--quiet); VERBOSE=2: debug detail too (--verbose); anything else: progress.
COMMON = --data="$$DATA" --preset="$$PRESET" $(call option,NAME,--name) $(call option,LAYOUT,--layout) $(call option,SIZE,--image-size) \
	$(if $(filter 1,$(SKIP_UNREADABLE)),--skip-unreadable) \
	$(if $(filter 0,$(VERBOSE)),--quiet)$(if $(filter 2,$(VERBOSE)),--verbose)
TRAINING_ARGS = $(call option,PRECISION,--precision) $(if $(filter 1,$(TENSORBOARD)),--tensorboard) \
	$(call option,EXECUTOR,--executor) $(call option,RAY_ADDRESS,--ray-address) $(call option,CPUS_PER_RUN,--cpus-per-run)
METRIC_ARG = $(call option,METRIC,--metric)
SEARCH_ONLY = $(call option,EVALS,--evals) $(call option,EPOCHS,--search-epochs)
ENSEMBLE_ONLY = $(call option,N,--n) $(call option,FOLDS,--folds) $(call option,RECIPES,--recipes) $(call option,THRESHOLD,--threshold) $(call option,MAX_RUNS,--max-runs) $(call option,EPOCHS,--epochs) $(call option,HOURS,--hours) \
	$(if $(filter 0,$(EARLY_ABORT)),--no-early-abort) $(call option,ABORT_MARGIN,--abort-margin) $(if $(filter 0,$(TTA)),--no-tta)
VOTE_ARGS = $(call option,VOTE,--vote) $(call option,STACK_WEIGHT,--stack-weight)
SEARCH_ARGS = $(TRAINING_ARGS) $(SEARCH_ONLY) $(METRIC_ARG)
ENSEMBLE_ARGS = $(TRAINING_ARGS) $(ENSEMBLE_ONLY) $(METRIC_ARG)
SUBMIT_ARGS = $(VOTE_ARGS) $(METRIC_ARG)
# make all is one 'kaggle_pipeline all' process, so HOURS (or the preset's) is the whole job's budget
# (kaggle_pipeline.budget), not the ensemble's alone as three separate stages would make it.
ALL_ARGS = $(TRAINING_ARGS) $(SEARCH_ONLY) $(ENSEMBLE_ONLY) $(VOTE_ARGS) $(METRIC_ARG)
STACK_ARGS = $(call option,WEIGHTS,--weights) $(call option,STACK_SIZE,--size) $(call option,TREES,--trees)
# The default competition is prepared on demand; another DATA folder is used as it is (submit-kaggle then says which).
ifeq ($(DATA),$(DEFAULT_DATA))
DATA_READY := $(DEFAULT_DATA)/PREPARED.json
KAGGLE_DATA :=
else
DATA_READY :=
KAGGLE_DATA := --data="$$DATA"
endif

.PHONY: setup setup-ray lint test-ray debian-data browser data dataset search ensemble stack submit report status download submit-kaggle all test clean

setup: $(INSTALLED)

# Optional: Ray for EXECUTOR=ray (kaggle_pipeline/ray_executor.py, docs/SCALE-OUT.md).
RAY_INSTALLED := $(VENV)/.ray-installed
setup-ray: $(RAY_INSTALLED)

$(RAY_INSTALLED): pyproject.toml requirements.txt | $(INSTALLED)
	$(PY) -m pip install --quiet -c requirements.txt -e ".[$$EXTRAS,ray]"
	@touch $@

# The project itself, editable (tests and bench scripts import it from this checkout), with the EXTRAS, at the
# versions pinned in requirements.txt (a constraints file).
$(INSTALLED): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c requirements.txt -e ".[$$EXTRAS]"
	@$(MAKE) --no-print-directory debian-data
	@touch $@

debian-data:
	@if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then \
		echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else \
		echo "Fashion-MNIST is not installed and this is not root: run 'sudo apt-get install dataset-fashion-mnist'"; \
		echo "(or 'make data' on a machine with internet access, which downloads it through Keras)"; \
	fi

data: $(DEFAULT_DATA)/PREPARED.json

$(DEFAULT_DATA)/PREPARED.json: | $(INSTALLED)
	$(PY) -m kaggle_pipeline data --out $(DEFAULT_DATA)

# A labelled dataset made a competition (kaggle_pipeline/data/dataset.py): into DATA when given, else data/<its name>.
dataset: $(INSTALLED)
	@$(call run,$(PY) -m kaggle_pipeline data --dataset="$$DATASET" $(if $(KAGGLE_DATA),--out="$$DATA") \
		$(call option,LABEL_COLUMN,--label-column))

search: $(INSTALLED) $(DATA_READY)
	@$(call run,$(PY) -m kaggle_pipeline search $(COMMON) $(SEARCH_ARGS))

ensemble: $(INSTALLED) $(DATA_READY)
	@$(call run,$(PY) -m kaggle_pipeline ensemble $(COMMON) $(ENSEMBLE_ARGS))

stack: $(INSTALLED) $(DATA_READY)
	@$(call run,$(PY) -m kaggle_pipeline stack $(COMMON) $(STACK_ARGS))

submit: $(INSTALLED) $(DATA_READY)
	@$(call run,$(PY) -m kaggle_pipeline submit $(COMMON) $(call option,THRESHOLD,--threshold) $(SUBMIT_ARGS))

# Kaggle's client (the [kaggle] extra, which make setup installs), signed in any way it accepts (README, Kaggle).
# KAGGLE_DATASET downloads a dataset instead; with COMPETITION too, both are passed and refused as one line.
download: $(INSTALLED)
	@$(call run,$(PY) -m kaggle_pipeline download $(if $(KAGGLE_DATASET),--dataset="$$KAGGLE_DATASET" \
		$(call option,COMPETITION,--competition),--competition="$$COMPETITION"))

submit-kaggle: $(INSTALLED)
	@$(call run,$(PY) -m kaggle_pipeline submit-kaggle --competition="$$COMPETITION" --message="$$MESSAGE" \
		$(KAGGLE_DATA) --preset="$$PRESET" $(call option,NAME,--name))

report: $(INSTALLED) $(DATA_READY)
	@$(call run,$(PY) -m kaggle_pipeline report $(COMMON))

status: $(INSTALLED)
	@$(PY) -m kaggle_pipeline status $(COMMON)

all: $(INSTALLED) $(DATA_READY)
	@start=$$(date +%s); \
	( $(call run,$(PY) -m kaggle_pipeline all $(COMMON) $(ALL_ARGS)) ) && \
	echo "make all: finished in $$(( $$(date +%s) - start )) s"

# The Ray tests (tests/ray/) run in their own pytest process: a Ray instance, once started, stays for the session.
# The rest runs on two workers, one test file each at a time (pytest-xdist, --dist loadfile): most of the suite
# leaves one of two cores idle (tiny nets, subprocesses, kill tests): two workers take 6 minutes where one took 10.
test: $(INSTALLED) browser $(RAY_INSTALLED)
	$(PY) -m pytest -q -n 2 --dist loadfile tests --ignore=tests/ray
	$(PY) -m pytest -q tests/ray

lint: $(INSTALLED)
	$(VENV)/bin/ruff check kaggle_pipeline tests bench

test-ray: $(RAY_INSTALLED)
	$(PY) -m pytest -q tests/ray

# Headless Chromium for the test that opens the report page (Debian's packages; skipped by that test without them).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium and chromium-driver for the report test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; \
	else \
		echo "no headless Chromium: the report page is not opened in a browser ('sudo apt-get install chromium chromium-driver')"; \
	fi

# Removes only caches that any command rebuilds in seconds. Trained runs, submissions and reports cost hours and may
# hold the user's own files, so no target deletes them (it used to: 'rm -rf models submissions reports').
clean:
	rm -rf .pytest_cache .ruff_cache
	find kaggle_pipeline tests bench -depth -type d -name __pycache__ -exec rm -rf {} +
	@echo "kept models/, submissions/ and reports/ (trained runs and results): move or delete them yourself"
