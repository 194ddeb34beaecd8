"""The Makefile passes user text to the programs as it is: no shell or make code in a variable ever runs.

Real ``make`` runs the checkout's Makefile in a temporary folder where it and ``.venv`` are linked to the
checkout's, with ``INSTALLED=`` (so no recipe can reinstall the environment). Two vehicles train nothing:
``PY=<a fake python>`` that records the argv make builds for every target (``make all`` included, with its
sub-makes), and the real pipeline for ``status``, ``download`` and ``submit-kaggle`` with a fake ``kaggle``
client first on PATH that records its argv. Each hostile value tries ``touch pwned`` in the folder make
runs in, by every route a shell or make offers.
"""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import CLI_ENVIRONMENT, ROOT, write_csv_competition
from test_kaggle_client import calls, fake_client, snapshot

pytestmark = [
    pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed"),
    pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="no .venv in the checkout"),
]

USER_VARIABLES = ("DATA NAME PRESET EVALS EPOCHS N FOLDS RECIPES THRESHOLD MAX_RUNS HOURS PRECISION TENSORBOARD EARLY_ABORT "
                  "ABORT_MARGIN TTA VOTE METRIC STACK_WEIGHT WEIGHTS SIZE STACK_SIZE LAYOUT TREES EXECUTOR RAY_ADDRESS CPUS_PER_RUN "
                  "COMPETITION MESSAGE EXTRAS VERBOSE SKIP_UNREADABLE DATASET KAGGLE_DATASET LABEL_COLUMN").split()

# No '/' (they also name folders) and no leading whitespace (make's command line strips it).
HOSTILE = [
    "it's \"quoted\" `touch pwned` $(touch pwned) $HOME ${HOME} $$HOME",
    "; touch pwned && touch pwned || touch pwned | tee pwned #",
    "-x * ?akefile [a-z]* ~ --force -- trailing space ",
    "two\nlines $(shell touch pwned) $$(shell touch pwned) %p \\",
    "'; touch pwned; echo '",
    '"; touch pwned; echo "\\',
    "a=b, c:d (e) {f} $(info x) $(eval X := 1) $@ $< \ttab",
]
IDS = ["quotes", "operators", "dashes-globs", "newline-make", "single-quote", "double-quote", "make-syntax"]

FAKE_PYTHON = """#!{python}
import json, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""


@pytest.fixture
def here(tmp_path):
    """The folder make runs in, laid out like the checkout: its Makefile and .venv linked (PY as it has it)."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "Makefile").symlink_to(ROOT / "Makefile")
    return tmp_path


def make_environment(folder, path_dirs=()):
    env = {key: value for key, value in CLI_ENVIRONMENT.items()
           if key not in USER_VARIABLES and not key.startswith(("KAGGLE_", "MAKE"))}
    env.update(PATH=os.pathsep.join([*map(str, path_dirs), os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
               KAGGLE_CONFIG_DIR=str(folder / "no-kaggle-config"), KAGGLE_USERNAME="someone", KAGGLE_KEY="s3cret-key")
    return env


def make(folder, *arguments, environment=None, path_dirs=(), timeout=60):
    env = make_environment(folder, path_dirs)
    env.update(environment or {})
    return subprocess.run(["make", "--no-print-directory", "INSTALLED=", *arguments],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)


def fake_python(folder):
    log = folder / "python-calls.jsonl"
    script = folder / "fake-python"
    script.write_text(FAKE_PYTHON.format(python=sys.executable, log=str(log)))
    script.chmod(0o755)
    return f"PY={script}", log


def assert_not_injected(folder, finished):
    assert not (folder / "pwned").exists(), finished.stdout + finished.stderr
    assert "Traceback" not in finished.stderr


def assert_refused(finished, error):
    """Exit 2 and one error line: the pipeline's, then make's own 'make: *** [...] Error 2'."""
    assert finished.returncode == 2, finished.stderr
    assert finished.stderr.startswith(f"error: {error}\n"), finished.stderr
    rest = finished.stderr[len(f"error: {error}\n"):].splitlines()
    assert len(rest) == 1 and rest[0].startswith("make: *** "), finished.stderr


# The argv each target builds --------------------------------------------------------------------
def test_every_variable_reaches_its_option_as_one_argument(here):
    py, log = fake_python(here)
    value = HOSTILE[0]
    settings = {variable: f"{variable.lower()} {value}" for variable in USER_VARIABLES}
    settings.update(TENSORBOARD="1", EARLY_ABORT="0", TTA="0", VERBOSE="0", SKIP_UNREADABLE="1")
    finished = make(here, py, *(f"{key}={item}" for key, item in settings.items()),
                    "search", "ensemble", "stack", "submit", "report", "status", "download", "submit-kaggle", "all",
                    "dataset")
    assert finished.returncode == 0, finished.stderr
    assert_not_injected(here, finished)

    def option(variable, flag):
        return f"{flag}={settings[variable]}"

    common = [option("DATA", "--data"), option("PRESET", "--preset"), option("NAME", "--name"), option("LAYOUT", "--layout"),
              option("SIZE", "--image-size"), "--skip-unreadable", "--quiet"]
    training = [option("PRECISION", "--precision"), "--tensorboard", option("EXECUTOR", "--executor"),
                option("RAY_ADDRESS", "--ray-address"), option("CPUS_PER_RUN", "--cpus-per-run")]
    module = ["-m", "kaggle_pipeline"]
    assert calls(log) == [
        [*module, "search", *common, *training, option("EVALS", "--evals"), option("EPOCHS", "--search-epochs"),
         option("METRIC", "--metric")],
        [*module, "ensemble", *common, *training, option("N", "--n"), option("FOLDS", "--folds"), option("RECIPES", "--recipes"), option("THRESHOLD", "--threshold"),
         option("MAX_RUNS", "--max-runs"), option("EPOCHS", "--epochs"), option("HOURS", "--hours"),
         "--no-early-abort", option("ABORT_MARGIN", "--abort-margin"), "--no-tta", option("METRIC", "--metric")],
        [*module, "stack", *common, option("WEIGHTS", "--weights"), option("STACK_SIZE", "--size"), option("TREES", "--trees")],
        [*module, "submit", *common, option("THRESHOLD", "--threshold"), option("VOTE", "--vote"),
         option("STACK_WEIGHT", "--stack-weight"), option("METRIC", "--metric")],
        [*module, "report", *common],
        [*module, "status", *common],
        [*module, "download", option("KAGGLE_DATASET", "--dataset"), option("COMPETITION", "--competition")],
        [*module, "submit-kaggle", option("COMPETITION", "--competition"), option("MESSAGE", "--message"),
         option("DATA", "--data"), option("PRESET", "--preset"), option("NAME", "--name")],
        # One process, so HOURS budgets the whole job: every stage's options, EPOCHS for both the trials and the runs.
        [*module, "all", *common, *training, option("EVALS", "--evals"), option("EPOCHS", "--search-epochs"),
         option("N", "--n"), option("FOLDS", "--folds"), option("RECIPES", "--recipes"), option("THRESHOLD", "--threshold"), option("MAX_RUNS", "--max-runs"),
         option("EPOCHS", "--epochs"), option("HOURS", "--hours"), "--no-early-abort", option("ABORT_MARGIN", "--abort-margin"),
         "--no-tta", option("VOTE", "--vote"), option("STACK_WEIGHT", "--stack-weight"), option("METRIC", "--metric")],
        [*module, "data", option("DATASET", "--dataset"), option("DATA", "--out"), option("LABEL_COLUMN", "--label-column")],
    ]


@pytest.mark.parametrize("value", [None, *HOSTILE], ids=["default", *IDS])
def test_setup_installs_the_project_with_its_extras_as_one_argument(here, value):
    """make setup: a venv, then pip install -c requirements.txt -e .[EXTRAS] (the stamp in a temporary folder)."""
    for name in ("pyproject.toml", "requirements.txt"):
        (here / name).symlink_to(ROOT / name)
    py, log = fake_python(here)
    stamp = here / "stamp" / ".installed"
    stamp.parent.mkdir()
    settings = [] if value is None else [f"EXTRAS={value}"]
    finished = subprocess.run(
        ["make", "--no-print-directory", f"INSTALLED={stamp}", py, f"PYTHON={py[3:]}", "setup", *settings],
        cwd=here, env={key: item for key, item in make_environment(here).items() if key != "EXTRAS"},
        capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert_not_injected(here, finished)
    extras = "cpu,report,kaggle,dev" if value is None else value
    assert calls(log) == [["-m", "venv", ".venv"],
                          ["-m", "pip", "install", "--quiet", "-c", "requirements.txt", "-e", f".[{extras}]"]]
    assert stamp.exists()


def test_unset_variables_add_no_option_and_the_default_data_is_prepared_first(here):
    py, log = fake_python(here)
    finished = make(here, py, "search", "submit-kaggle", "TENSORBOARD=0", "EARLY_ABORT=1", "TTA=1", "NAME=")
    assert finished.returncode == 0, finished.stderr
    assert calls(log) == [
        ["-m", "kaggle_pipeline", "data", "--out", "data/fashion-mnist"],
        ["-m", "kaggle_pipeline", "search", "--data=data/fashion-mnist", "--preset=quick"],
        ["-m", "kaggle_pipeline", "submit-kaggle", "--competition=", "--message=", "--preset=quick"],
    ]
    # The command is printed before it runs, with its arguments as given.
    assert finished.stdout.splitlines()[-1] == f"{py[3:]} -m kaggle_pipeline submit-kaggle --competition= --message= " \
                                               "--preset=quick"


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_make_all_passes_the_same_text_to_its_one_process(here, value):
    """make all runs 'kaggle_pipeline all' (search, ensemble and submit under one budget): the values arrive
    there unexpanded too."""
    py, log = fake_python(here)
    finished = make(here, py, "all", f"DATA=d {value}", f"NAME={value}", f"THRESHOLD={value}", f"VOTE={value}",
                    f"METRIC={value}", environment={"EPOCHS": value})  # a value from the environment, not the command line
    assert finished.returncode == 0, finished.stderr
    assert_not_injected(here, finished)
    common = [f"--data=d {value}", "--preset=quick", f"--name={value}"]
    assert [call[2:] for call in calls(log)] == [
        ["all", *common, f"--search-epochs={value}", f"--threshold={value}", f"--epochs={value}", f"--vote={value}",
         f"--metric={value}"],
    ]
    assert "make all: finished in" in finished.stdout


# The real pipeline behind the Kaggle and status targets -----------------------------------------
@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_submit_kaggle_sends_the_message_and_names_byte_exact(here, value):
    # A store name with a newline or a tab is refused by the pipeline itself (test_status_... below): the name
    # here keeps everything else of the hostile text, the message all of it.
    name = "".join(character if character.isprintable() else " " for character in value)
    folder_name = f"comp {name}".replace("/", "_")
    data = write_csv_competition(here / "competitions" / folder_name, count=30, test_count=6)
    latest = here / "submissions" / name / "latest.csv"
    latest.parent.mkdir(parents=True)
    latest.write_text((data / "sample_submission.csv").read_text())  # every row 'label 0': a valid submission
    bin_dir, log = fake_client(here)
    finished = make(here, "submit-kaggle", "COMPETITION=digit-recognizer", f"MESSAGE={value}",
                    f"DATA=competitions/{folder_name}", f"NAME={name}", path_dirs=[bin_dir])
    assert finished.returncode == 0, finished.stderr
    assert_not_injected(here, finished)
    assert calls(log) == [["competitions", "submit", "-c", "digit-recognizer", "-f", f"submissions/{name}/latest.csv",
                           "-m", value]]
    assert "s3cret" not in finished.stdout + finished.stderr


@pytest.mark.parametrize("variable", ["NAME", "DATA"])
@pytest.mark.parametrize("value", HOSTILE[:4], ids=IDS[:4])
def test_status_names_the_store_it_was_given_and_changes_nothing(here, variable, value):
    before = snapshot(here)
    finished = make(here, "status", f"{variable}={value}")
    assert_not_injected(here, finished)
    if value.isprintable():
        assert_refused(finished, f"models/{value}: no run store here yet; run 'make search' first")
    else:  # a newline in a folder name: refused before anything is looked up
        assert_refused(finished, f"--{variable.lower()} {value!r} ({variable}=): holds control characters; "
                                 "not a usable folder name")
    assert snapshot(here) == before


@pytest.mark.parametrize("value", HOSTILE[:3] + ["-c", "titanic; touch pwned", "titanic\ntouch pwned"],
                         ids=IDS[:3] + ["option", "semicolon", "newline"])
def test_download_refuses_a_hostile_slug_in_one_line(here, value):
    bin_dir, log = fake_client(here)
    before = snapshot(here)
    finished = make(here, "download", f"COMPETITION={value}", path_dirs=[bin_dir])
    assert_not_injected(here, finished)
    assert_refused(finished, f"COMPETITION={value!r}: give the competition's slug, e.g. digit-recognizer")
    assert not log.exists() and snapshot(here) == before


@pytest.mark.parametrize("value", HOSTILE[:3] + ["-o", "owner/-o", "owner/x; touch pwned", "owner/x\ntouch pwned"],
                         ids=IDS[:3] + ["option", "option-name", "semicolon", "newline"])
def test_download_refuses_a_hostile_dataset_in_one_line(here, value):
    bin_dir, log = fake_client(here)
    before = snapshot(here)
    finished = make(here, "download", f"KAGGLE_DATASET={value}", path_dirs=[bin_dir])
    assert_not_injected(here, finished)
    assert_refused(finished, f"KAGGLE_DATASET={value!r}: give the dataset as <owner>/<name>, e.g. "
                             "paultimothymooney/chest-xray-pneumonia")
    assert not log.exists() and snapshot(here) == before


def test_download_of_a_dataset_reaches_the_client_and_both_sources_are_refused(here, tmp_path):
    bin_dir, log = fake_client(tmp_path, source=write_csv_competition(tmp_path / "dataset"))
    finished = make(here, "download", "KAGGLE_DATASET=someone/chest-xray", path_dirs=[bin_dir])
    assert finished.returncode == 0, finished.stderr
    assert calls(log) == [["datasets", "download", "someone/chest-xray", "-p", "data/chest-xray"]]
    before = snapshot(here)
    finished = make(here, "download", "KAGGLE_DATASET=someone/chest-xray", "COMPETITION=titanic", path_dirs=[bin_dir])
    assert_refused(finished, "argument --competition: not allowed with argument --dataset")
    assert len(calls(log)) == 1 and snapshot(here) == before


def test_clean_removes_caches_and_never_results(here):
    # `make clean` once ran 'rm -rf models submissions reports': hours of trained runs, and any file of the user's
    # inside those folders, gone by habit. Now it removes only caches that any command rebuilds.
    results = {
        "models/fashion-mnist/runs/run-0001/run.json": "{}",
        "models/fashion-mnist/notes.txt": "the user's own file",
        "submissions/fashion-mnist/latest.csv": "id,label\n1,0\n",
        "reports/fashion-mnist/index.html": "<html></html>",
    }
    caches = [".pytest_cache/v/cache/lastfailed", "kaggle_pipeline/__pycache__/cli.cpython-313.pyc",
              "tests/__pycache__/conftest.pyc", "bench/__pycache__/budget.pyc", ".ruff_cache/0.1/x"]
    for name, text in results.items():
        (here / name).parent.mkdir(parents=True, exist_ok=True)
        (here / name).write_text(text)
    for name in caches:
        (here / name).parent.mkdir(parents=True, exist_ok=True)
        (here / name).write_bytes(b"cache")
    kept = {folder: snapshot(here / folder) for folder in ("models", "submissions", "reports")}

    finished = make(here, "clean")

    assert finished.returncode == 0, finished.stderr
    assert {folder: snapshot(here / folder) for folder in kept} == kept
    assert not any((here / name).exists() for name in caches)
    assert (here / "kaggle_pipeline").is_dir() and (here / "tests").is_dir()
    assert "kept models/, submissions/ and reports/" in finished.stdout
