"""The Kaggle targets drive the real client's command line; a fake ``kaggle`` first on PATH records it."""

import json
import os
import subprocess
import sys
import zipfile

import pytest
from conftest import CLI_ENVIRONMENT, cli_command, write_csv_competition

FAKE_CLIENT = """#!{python}
import json, sys, zipfile, pathlib
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
arguments = sys.argv[1:]
if arguments[:2] == ["competitions", "download"]:
    folder = pathlib.Path(arguments[arguments.index("-p") + 1])
    slug = arguments[arguments.index("-c") + 1]
    source = pathlib.Path({source!r})
    with zipfile.ZipFile(folder / (slug + ".zip"), "w") as bundle:
        for path in source.iterdir():
            bundle.write(path, path.name)
if {fail!r}:
    print("403 - Forbidden: you must accept this competition's rules", file=sys.stderr)
    sys.exit(1)
"""


def fake_client(tmp_path, source=None, fail=False):
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    log = tmp_path / "kaggle-calls.jsonl"
    client = folder / "kaggle"
    client.write_text(FAKE_CLIENT.format(python=sys.executable, log=str(log), source=str(source or tmp_path), fail=fail))
    client.chmod(0o755)
    return folder, log


def run(tmp_path, *arguments, path_dirs=(), credentials=True):
    environment = {key: value for key, value in CLI_ENVIRONMENT.items() if not key.startswith("KAGGLE_")}
    environment["PATH"] = os.pathsep.join([*map(str, path_dirs), os.path.dirname(sys.executable), "/usr/bin", "/bin"])
    environment["KAGGLE_CONFIG_DIR"] = str(tmp_path / "no-kaggle-config")
    if credentials:
        environment.update(KAGGLE_USERNAME="someone", KAGGLE_KEY="s3cret-key")
    return subprocess.run(cli_command(*arguments), cwd=tmp_path, env=environment, capture_output=True, text=True,
                          timeout=300)


def calls(log):
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_download_runs_the_client_and_unpacks_into_data(tmp_path):
    source = write_csv_competition(tmp_path / "as-kaggle-ships-it")
    bin_dir, log = fake_client(tmp_path, source=source)
    finished = run(tmp_path, "download", "--competition", "digit-recognizer", path_dirs=[bin_dir])
    assert finished.returncode == 0, finished.stderr
    assert calls(log) == [["competitions", "download", "-c", "digit-recognizer", "-p", "data/digit-recognizer"]]
    unpacked = tmp_path / "data" / "digit-recognizer"
    assert sorted(path.name for path in unpacked.iterdir()) == sorted(path.name for path in source.iterdir())
    assert "s3cret" not in finished.stderr + finished.stdout


def test_submit_kaggle_checks_latest_csv_then_submits(tmp_path):
    data = write_csv_competition(tmp_path / "data" / "digit-recognizer")
    sample = (data / "sample_submission.csv").read_text()
    latest = tmp_path / "submissions" / "digit-recognizer" / "latest.csv"
    latest.parent.mkdir(parents=True)
    latest.write_text(sample)  # every row 'label 0': a valid submission
    bin_dir, log = fake_client(tmp_path)
    finished = run(tmp_path, "submit-kaggle", "--competition", "digit-recognizer", "--message", "vote of 30 runs",
                   path_dirs=[bin_dir])
    assert finished.returncode == 0, finished.stderr
    assert calls(log) == [["competitions", "submit", "-c", "digit-recognizer", "-f",
                           "submissions/digit-recognizer/latest.csv", "-m", "vote of 30 runs"]]
    assert "s3cret" not in finished.stderr + finished.stdout

    # A submission Kaggle would reject never reaches the client.
    latest.write_text(sample.replace(",0\n", ",9\n", 1))
    refused = run(tmp_path, "submit-kaggle", "--competition", "digit-recognizer", "--message", "m", path_dirs=[bin_dir])
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "latest.csv: label '9' is not one of the 3 classes" in refused.stderr
    assert len(calls(log)) == 1


@pytest.mark.parametrize("problem", ["no client", "no credentials", "client fails"])
def test_client_problems_are_one_line(tmp_path, problem):
    source = write_csv_competition(tmp_path / "source")
    bin_dir, log = fake_client(tmp_path, source=source, fail=problem == "client fails")
    finished = run(tmp_path, "download", "--competition", "titanic",
                   path_dirs=[] if problem == "no client" else [bin_dir], credentials=problem != "no credentials")
    assert finished.returncode == 2 and finished.stderr.count("error:") == 1 and "Traceback" not in finished.stderr
    expected = {
        "no client": "error: kaggle: command not found; install Kaggle's client with 'pip install kaggle'",
        "no credentials": f"error: {tmp_path / 'no-kaggle-config' / 'kaggle.json'}: no Kaggle credentials",
        "client fails": "error: kaggle competitions download failed (exit 1): 403 - Forbidden",
    }[problem]
    assert finished.stderr.splitlines()[-1].startswith(expected)  # after the client's command line, if it ran


def test_a_zip_member_outside_the_folder_is_refused(tmp_path):
    from kaggle_pipeline.errors import PipelineError
    from kaggle_pipeline.kaggle_client import _unpack

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../escaped.txt", "x")
    (tmp_path / "data").mkdir()
    with pytest.raises(PipelineError, match="would be written outside"):
        _unpack(archive, tmp_path / "data")
    assert not (tmp_path / "escaped.txt").exists()
