"""The Kaggle targets drive the real client's command line; a fake ``kaggle`` first on PATH records it."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CLI_ENVIRONMENT, cli_command, write_csv_competition, write_image_competition
from PIL import Image

from kaggle_pipeline.kaggle_client import installed_client

FAKE_CLIENT = """#!{python}
import json, sys, time, zipfile, pathlib
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
time.sleep({sleep!r})
arguments = sys.argv[1:]
if arguments[:2] in (["competitions", "download"], ["datasets", "download"]):
    folder = pathlib.Path(arguments[arguments.index("-p") + 1])
    # The archive is named after the competition's slug, or the dataset's name (kaggle 2.2.5).
    slug = arguments[arguments.index("-c") + 1] if arguments[0] == "competitions" else arguments[2].split("/")[1]
    source = pathlib.Path({source!r})
    archive = folder / (slug + ".zip")
    if {skip_existing!r} and archive.exists():
        print(archive.name + ": Skipping, found more recently modified local copy (use --force to force download)")
    else:
        with zipfile.ZipFile(archive, "w") as bundle:
            for path in sorted(source.rglob("*")):
                bundle.write(path, path.relative_to(source))
sys.stdout.write({stdout!r})
sys.stderr.write({stderr!r})
sys.exit({exit_code!r})
"""
FORBIDDEN = "403 - Forbidden: you must accept this competition's rules\n"
# What kaggle 2.2.5 prints to stdout, then exit 1, when it has no credentials or Kaggle refused them (abridged).
AUTH_PAGE = """Authentication required to call the Kaggle API.

Recommended: log in with OAuth via a web-based authorization flow.
    kaggle auth login

  Option A: Environment variable
    export KAGGLE_API_TOKEN=xxxxxxxxxxxxxx  # token copied from the settings UI

  Option B: API token file
    Save the token to ~/.kaggle/access_token
"""


def fake_client(tmp_path, source=None, fail=False, stdout="", stderr=None, exit_code=None, skip_existing=False,
                sleep=0):
    """A ``kaggle`` that logs its arguments, writes <slug>.zip (<name>.zip for a dataset) of ``source`` on download,
    then prints and exits."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    log = tmp_path / "kaggle-calls.jsonl"
    client = folder / "kaggle"
    client.write_text(FAKE_CLIENT.format(
        python=sys.executable, log=str(log), source=str(source or tmp_path), skip_existing=skip_existing, sleep=sleep,
        stdout=stdout, stderr=FORBIDDEN if stderr is None and fail else (stderr or ""),
        exit_code=exit_code if exit_code is not None else (1 if fail else 0)))
    client.chmod(0o755)
    return folder, log


def snapshot(folder):
    """Every file and folder under ``folder``: bytes and mtime of files, so 'nothing changed' can be asserted."""
    folder = Path(folder)
    if not folder.exists():
        return None
    return {str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else "dir"
            for path in sorted(folder.rglob("*"))}


def assert_one_error_line(finished, expected):
    """Exit 2, no traceback, one 'error:' line, the last one (after the client's command line, if it ran)."""
    assert finished.returncode == 2, finished.stderr
    assert "Traceback" not in finished.stderr
    assert [line for line in finished.stderr.splitlines() if line.startswith("error:")] == \
        finished.stderr.splitlines()[-1:]
    assert expected in finished.stderr.splitlines()[-1], finished.stderr


def run(tmp_path, *arguments, path_dirs=(), credentials=True, environment=None):
    """The CLI in a fresh interpreter, HOME and Kaggle's folders in tmp_path, the given folders first on PATH."""
    extra = environment or {}
    environment = {key: value for key, value in CLI_ENVIRONMENT.items() if not key.startswith("KAGGLE_")}
    environment["PATH"] = os.pathsep.join([*map(str, path_dirs), os.path.dirname(sys.executable), "/usr/bin", "/bin"])
    environment.update(KAGGLE_CONFIG_DIR=str(tmp_path / "no-kaggle-config"), HOME=str(tmp_path / "home"),
                       XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"))
    if credentials:
        environment.update(KAGGLE_USERNAME="someone", KAGGLE_KEY="s3cret-key")
    environment.update(extra)
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
    assert sorted(path.name for path in unpacked.iterdir()) == sorted([*(path.name for path in source.iterdir()),
                                                                       ".kaggle-download.json"])
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


@pytest.mark.parametrize("step", ["download", "submit-kaggle"])
def test_a_client_that_hangs_is_stopped_and_is_one_line(tmp_path, step):
    source = write_csv_competition(tmp_path / "source")
    arguments = ["--competition", "titanic"]
    if step == "submit-kaggle":
        data = write_csv_competition(tmp_path / "data" / "titanic")
        latest = tmp_path / "submissions" / "titanic" / "latest.csv"
        latest.parent.mkdir(parents=True)
        latest.write_text((data / "sample_submission.csv").read_text())
        arguments += ["--message", "m"]
    before = snapshot(tmp_path / "data")
    bin_dir, log = fake_client(tmp_path, source=source, sleep=60)
    started = time.monotonic()
    finished = run(tmp_path, step, *arguments, path_dirs=[bin_dir], environment={"KAGGLE_PIPELINE_CLIENT_TIMEOUT": "2"})
    assert time.monotonic() - started < 30
    action = "download" if step == "download" else "submit"
    assert_one_error_line(finished, f"kaggle competitions {action}: no answer after 2 s, stopped; check the network")
    assert snapshot(tmp_path / "data") == before and len(calls(log)) == 1

    refused = run(tmp_path, step, *arguments, path_dirs=[bin_dir], environment={"KAGGLE_PIPELINE_CLIENT_TIMEOUT": "soon"})
    assert_one_error_line(refused, "KAGGLE_PIPELINE_CLIENT_TIMEOUT='soon': give the client's time limit in seconds")
    assert len(calls(log)) == 1  # refused before the client ran


@pytest.mark.parametrize("problem", ["not signed in", "client fails"])
def test_client_problems_are_one_line(tmp_path, problem):
    source = write_csv_competition(tmp_path / "source")
    if problem == "not signed in":  # the client decides: it prints its page of help, and we one line
        bin_dir, log = fake_client(tmp_path, source=source, stdout=AUTH_PAGE, exit_code=1)
    else:
        bin_dir, log = fake_client(tmp_path, source=source, fail=True)
    finished = run(tmp_path, "download", "--competition", "titanic", path_dirs=[bin_dir],
                   credentials=problem != "not signed in")
    assert finished.returncode == 2 and finished.stderr.count("error:") == 1 and "Traceback" not in finished.stderr
    assert not (tmp_path / "data").exists()  # no folder left behind, not even when the client ran and failed
    expected = {
        "not signed in": "error: kaggle competitions download failed (exit 1): Kaggle's client is not signed in "
                         "(or Kaggle refused its credentials): run 'kaggle auth login', or put an API token",
        "client fails": "error: kaggle competitions download failed (exit 1): 403 - Forbidden",
    }[problem]
    assert finished.stderr.splitlines()[-1].startswith(expected)  # after the client's command line
    assert len(calls(log)) == 1


def test_no_client_is_one_line(tmp_path, monkeypatch, capsys):
    """Neither on PATH nor beside the interpreter: one line saying what to install, and nothing on disk."""
    from kaggle_pipeline.cli import main

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sysconfig, "get_path", lambda name, *args, **kwargs: str(empty))
    monkeypatch.chdir(tmp_path)
    assert main(["download", "--competition", "titanic"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: kaggle: command not found; install Kaggle's client with \"pip install 'kaggle-pipeline[kaggle]'\" "
        "(make setup installs it)"]
    assert not (tmp_path / "data").exists()


def test_the_client_beside_the_interpreter_is_found_without_path(tmp_path, monkeypatch):
    """make download runs .venv/bin/python without activating the venv: .venv/bin/kaggle is used all the same."""
    from kaggle_pipeline.kaggle_client import installed_client

    bin_dir, _ = fake_client(tmp_path)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sysconfig, "get_path", lambda name, *args, **kwargs: str(bin_dir))
    assert installed_client() == str(bin_dir / "kaggle")


@pytest.mark.parametrize("sign_in", ["KAGGLE_API_TOKEN", "KAGGLE_API_TOKEN file", "access_token", "auth login",
                                     "kaggle.json", "KAGGLE_USERNAME/KAGGLE_KEY", "none"])
def test_every_sign_in_reaches_the_client(tmp_path, sign_in):
    """Nothing is refused before the client runs: it knows which sign-ins it accepts (and says when it has none)."""
    source = write_csv_competition(tmp_path / "source")
    bin_dir, log = fake_client(tmp_path, source=source)
    home_kaggle = tmp_path / "home" / ".kaggle"
    home_kaggle.mkdir(parents=True)
    environment = {}
    if sign_in == "KAGGLE_API_TOKEN":
        environment["KAGGLE_API_TOKEN"] = "KGAT_token"
    elif sign_in == "KAGGLE_API_TOKEN file":
        (tmp_path / "token").write_text("KGAT_token\n")
        environment["KAGGLE_API_TOKEN"] = str(tmp_path / "token")
    elif sign_in == "access_token":
        (home_kaggle / "access_token").write_text("KGAT_token\n")
    elif sign_in == "auth login":
        (home_kaggle / "credentials.json").write_text(json.dumps({"refresh_token": "r3fresh", "username": "u"}))
    elif sign_in == "kaggle.json":
        (home_kaggle / "kaggle.json").write_text(json.dumps({"username": "u", "key": "k3y-value"}))
    elif sign_in == "KAGGLE_USERNAME/KAGGLE_KEY":
        environment.update(KAGGLE_USERNAME="someone", KAGGLE_KEY="s3cret-key")
    finished = run(tmp_path, "download", "--competition", "titanic", path_dirs=[bin_dir], credentials=False,
                   environment=environment)
    assert finished.returncode == 0, finished.stderr
    assert calls(log) == [["competitions", "download", "-c", "titanic", "-p", "data/titanic"]]


def test_credentials_json_and_a_token_file_are_masked(tmp_path, monkeypatch):
    from kaggle_pipeline.kaggle_client import mask_credentials

    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "credentials.json").write_text(json.dumps({"refresh_token": "r3fresh-tok",
                                                                        "username": "someone"}))
    (tmp_path / "token").write_text("filed-t0ken\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KAGGLE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("KAGGLE_API_TOKEN", str(tmp_path / "token"))
    assert mask_credentials("refused r3fresh-tok and filed-t0ken") == "refused *** and ***"


# Kaggle's real client, where it is installed (make setup installs the [kaggle] extra) --------------

REAL_CLIENT = installed_client()
needs_real_client = pytest.mark.skipif(
    REAL_CLIENT is None, reason="Kaggle's client is not installed (pip install -e '.[kaggle]'; make setup installs it)")


def real_client_environment(tmp_path):
    """No credentials anywhere the client looks, so it never goes to the network."""
    environment = {key: value for key, value in CLI_ENVIRONMENT.items() if not key.startswith("KAGGLE_")}
    environment.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
                       KAGGLE_CONFIG_DIR=str(tmp_path / "home" / ".kaggle"))
    return environment


@needs_real_client
def test_the_real_clients_help_offers_the_options_we_use(tmp_path):
    environment = real_client_environment(tmp_path)
    version = subprocess.run([REAL_CLIENT, "--version"], env=environment, capture_output=True, text=True, timeout=120)
    assert version.returncode == 0, version.stdout + version.stderr
    print(version.stdout.strip())  # Kaggle CLI 2.2.5 is the version checked (README, Kaggle)
    for command, options in ([], []), (["competitions", "download"], ["-p PATH"]), \
            (["datasets", "download"], ["-p PATH", "<owner>/<dataset-name>"]), \
            (["competitions", "submit"], ["-f FILE_NAME", "-m MESSAGE"]):
        finished = subprocess.run([REAL_CLIENT, *command, "--help"], env=environment, capture_output=True, text=True,
                                  timeout=120)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        assert finished.stdout.startswith(f"usage: kaggle {' '.join(command)}".rstrip()), finished.stdout
        for option in options:
            assert option in finished.stdout, finished.stdout


@needs_real_client
def test_the_real_client_parses_our_command_lines_and_says_it_is_not_signed_in(tmp_path):
    """'-c' is hidden from the client's help but still accepted: with no credentials our download and submit
    command lines get past its argument parser (a parse error would be exit 2 with its usage) to its sign-in,
    which fails before any network access (exit 1) and comes back as our one line."""
    data = write_csv_competition(tmp_path / "data" / "digit-recognizer")
    latest = tmp_path / "submissions" / "digit-recognizer" / "latest.csv"
    latest.parent.mkdir(parents=True)
    latest.write_text((data / "sample_submission.csv").read_text())
    environment = real_client_environment(tmp_path)
    for arguments in (["download", "--competition", "titanic"],
                      ["submit-kaggle", "--competition", "digit-recognizer", "--message", "m"]):
        finished = run(tmp_path, *arguments, path_dirs=[os.path.dirname(REAL_CLIENT)], credentials=False,
                       environment=environment)
        stage = "download" if arguments[0] == "download" else "submit"
        assert_one_error_line(finished, f"kaggle competitions {stage} failed (exit 1): Kaggle's client is not "
                                        "signed in")
    assert not (tmp_path / "data" / "titanic").exists()


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


HEX_KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("shape", ["environment key, last stderr line", "kaggle.json key on stdout",
                                   "access_token on an earlier line", "patterns"])
def test_credentials_in_the_clients_messages_are_masked(tmp_path, shape):
    """Kaggle's client may print the user's key in its error; it is passed on with the key as ***."""
    config = tmp_path / "no-kaggle-config"  # the folder run() points KAGGLE_CONFIG_DIR at
    config.mkdir()
    secrets = ["s3cret-key"]
    stdout, stderr = "", None
    if shape == "environment key, last stderr line":
        stderr = "Downloading\n401 - Unauthorized: s3cret-key is not valid for someone\n"
        last = "401 - Unauthorized: *** is not valid for someone"
    elif shape == "kaggle.json key on stdout":
        (config / "kaggle.json").write_text(json.dumps({"username": "someone", "key": "json-k3y-value"}))
        stdout, stderr = "bad credentials json-k3y-value for someone\n", ""
        secrets.append("json-k3y-value")
        last = "bad credentials *** for someone"
    elif shape == "access_token on an earlier line":
        (config / "access_token").write_text("KGAT_0a1b2c3d4e5f\n")
        stderr = "Authorization: Bearer KGAT_0a1b2c3d4e5f\n  key s3cret-key\nHTTP 401\n"
        secrets.append("KGAT_0a1b2c3d4e5f")
        last = "HTTP 401"
    else:
        stderr = (f'401 {{"username": "x", "key": "{HEX_KEY[:8]}"}} key=tok3n1 token=tok3n2 {HEX_KEY} '
                  "Authorization: Bearer abc.def-ghi https://someone:pa55@www.kaggle.com/api KGAT_zzzz9\n")
        secrets += [HEX_KEY, HEX_KEY[:8], "tok3n1", "tok3n2", "abc.def-ghi", "pa55", "KGAT_zzzz9"]
        last = ('401 {"username": "x", "key": "***"} key=*** token=*** *** Authorization: Bearer *** '
                "https://someone:***@www.kaggle.com/api ***")
    bin_dir, log = fake_client(tmp_path, stdout=stdout, stderr=stderr, exit_code=1)
    finished = run(tmp_path, "download", "--competition", "titanic", path_dirs=[bin_dir])
    assert_one_error_line(finished, f"kaggle competitions download failed (exit 1): {last}")
    assert finished.stderr.splitlines()[-1].endswith(last)
    for secret in secrets:
        assert secret not in finished.stdout + finished.stderr, secret


def test_masking_covers_kaggle_api_token_and_leaves_ordinary_text(monkeypatch, tmp_path):
    from kaggle_pipeline.kaggle_client import mask_credentials

    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("KAGGLE_API_TOKEN", "api-token-value")
    monkeypatch.setenv("KAGGLE_KEY", "k")  # too short to mask on its own: it would mask every 'k'
    assert mask_credentials("token api-token-value refused") == "token *** refused"
    ordinary = "404 - Not Found: competition 'titanic-2' (check the slug), 12 files, 3.5 kB"
    assert mask_credentials(ordinary) == ordinary


def test_an_unreadable_client_or_undecodable_output_is_one_line(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kaggle").write_bytes(b"#!/bin/sh\nprintf 'bad \\377\\376 bytes\\n' >&2\nexit 3\n")
    (bin_dir / "kaggle").chmod(0o755)
    finished = run(tmp_path, "download", "--competition", "titanic", path_dirs=[bin_dir])
    assert_one_error_line(finished, "kaggle competitions download failed (exit 3): bad")
    (bin_dir / "kaggle").write_bytes(b"\x7fELF not really\n")  # executable bit, but no program: exec fails
    finished = run(tmp_path, "download", "--competition", "titanic", path_dirs=[bin_dir])
    assert_one_error_line(finished, "cannot run Kaggle's client")
    assert not (tmp_path / "data").exists()


def test_download_deletes_only_the_archive_it_wrote(tmp_path):
    source = write_csv_competition(tmp_path / "source")
    folder = tmp_path / "data" / "digit-recognizer"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "mine.zip", "w") as bundle:  # the user's own archive, beside the download
        bundle.writestr("mine.txt", "mine")
    (folder / "notes.txt").write_text("my notes")
    users = snapshot(folder)
    bin_dir, log = fake_client(tmp_path, source=source)
    finished = run(tmp_path, "download", "--competition", "digit-recognizer", path_dirs=[bin_dir])
    assert finished.returncode == 0, finished.stderr
    after = snapshot(folder)
    assert {name: after[name] for name in users} == users  # mine.zip and notes.txt untouched
    assert not (folder / "mine.txt").exists() and not (folder / "digit-recognizer.zip").exists()
    assert (folder / "train.csv").read_bytes() == (source / "train.csv").read_bytes()

    # Downloading again overwrites what the first download unpacked.
    (source / "train.csv").write_text((source / "train.csv").read_text() + "\n")
    finished = run(tmp_path, "download", "--competition", "digit-recognizer", path_dirs=[bin_dir])
    assert finished.returncode == 0, finished.stderr
    assert (folder / "train.csv").read_bytes() == (source / "train.csv").read_bytes()
    assert {name: snapshot(folder)[name] for name in users} == users

    # A file changed since it was unpacked is the user's now: the next download refuses and changes nothing.
    (folder / "test.csv").write_text("edited by hand\n")
    before = snapshot(tmp_path / "data")
    finished = run(tmp_path, "download", "--competition", "digit-recognizer", path_dirs=[bin_dir])
    assert_one_error_line(finished, f"{(folder / 'test.csv').resolve()}: already here, and not as an earlier "
                                    "download unpacked it")
    assert snapshot(tmp_path / "data") == before


def test_download_never_overwrites_a_users_file(tmp_path):
    source = write_csv_competition(tmp_path / "source")
    folder = tmp_path / "data" / "digit-recognizer"
    folder.mkdir(parents=True)
    (folder / "train.csv").write_text("the user's own train.csv\n")
    before = snapshot(tmp_path / "data")
    bin_dir, log = fake_client(tmp_path, source=source)
    finished = run(tmp_path, "download", "--competition", "digit-recognizer", path_dirs=[bin_dir])
    assert_one_error_line(finished, "train.csv: already here, and not as an earlier download unpacked it")
    assert snapshot(tmp_path / "data") == before


def test_an_archive_the_client_left_alone_is_neither_unpacked_nor_deleted(tmp_path):
    source = write_csv_competition(tmp_path / "source")
    folder = tmp_path / "data" / "titanic"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "titanic.zip", "w") as bundle:  # downloaded by hand earlier
        bundle.writestr("train.csv", "x\n")
    before = snapshot(tmp_path / "data")
    bin_dir, log = fake_client(tmp_path, source=source, skip_existing=True)
    finished = run(tmp_path, "download", "--competition", "titanic", path_dirs=[bin_dir])
    assert_one_error_line(finished, "the client wrote no .zip archive; titanic.zip was already here and is left alone")
    assert snapshot(tmp_path / "data") == before


BAD_SLUGS = ["", "../etc", "a b", "x;touch pwned", "-c", "--force", "dïgit", "t\nx", "a/b"]
BAD_DATASETS = ["", "chest-xray", "a/b/c", "/name", "owner/", "-o/name", "owner/-p", "owner/--force", "owner/na me",
                "owner/näme", "owner/x;touch pwned", "owner/x\ny", "../etc", "owner/..", "https://www.kaggle.com/c/titanic",
                "https://example.com/datasets/a/b", "https://www.kaggle.com/datasets/owner/name/versions/3"]


@pytest.mark.parametrize("download, value", [*(("download", slug) for slug in BAD_SLUGS),
                                             *(("download_dataset", reference) for reference in BAD_DATASETS)])
def test_a_bad_slug_or_dataset_is_refused_before_anything(tmp_path, monkeypatch, download, value):
    import kaggle_pipeline.kaggle_client as kaggle_client
    from kaggle_pipeline.errors import PipelineError

    bin_dir, log = fake_client(tmp_path)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.chdir(tmp_path)
    expected = "^COMPETITION=" if download == "download" else "^KAGGLE_DATASET=.*give the dataset as <owner>/<name>"
    with pytest.raises(PipelineError, match=expected):
        getattr(kaggle_client, download)(value, tmp_path / "data")
    assert not log.exists() and not (tmp_path / "data").exists() and not (tmp_path / "pwned").exists()


def write_labelled_dataset(folder: Path) -> Path:
    """A dataset as Kaggle's users share them: train/ and test/ splits of class folders, one folder down
    (chest_xray/chest_xray/ in the original)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 3)):
        for label in ("NORMAL", "PNEUMONIA"):
            images = folder / "chest_xray" / split / label
            images.mkdir(parents=True)
            for index in range(count):
                Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(images / f"{label}-{index}.png")
    return folder


def test_a_dataset_is_downloaded_into_data_and_made_a_competition(tmp_path):
    source = write_labelled_dataset(tmp_path / "as-kaggle-ships-it")
    bin_dir, log = fake_client(tmp_path, source=source)
    finished = run(tmp_path, "download", "--dataset", "someone/chest-xray-pneumonia", path_dirs=[bin_dir])
    assert finished.returncode == 0, finished.stderr
    assert calls(log) == [["datasets", "download", "someone/chest-xray-pneumonia", "-p", "data/chest-xray-pneumonia"]]
    unpacked = tmp_path / "data" / "chest-xray-pneumonia"
    assert sorted(path.name for path in unpacked.iterdir()) == [".kaggle-download.json", "chest_xray"]
    assert json.loads((unpacked / ".kaggle-download.json").read_text())["source"] == \
        "datasets download someone/chest-xray-pneumonia"
    assert "next: make dataset DATASET=data/chest-xray-pneumonia" in finished.stderr
    # The next step it names makes a competition beside it, with its answer key.
    finished = run(tmp_path, "data", "--dataset", "data/chest-xray-pneumonia")
    assert finished.returncode == 0, finished.stderr
    competition = tmp_path / "data" / "chest-xray-pneumonia-competition"
    assert (competition / "solution.csv").read_text().count("\n") == 1 + 2 * 3


@pytest.mark.parametrize("address", ["https://www.kaggle.com/datasets/someone/chest-xray-pneumonia",
                                     "kaggle.com/datasets/someone/chest-xray-pneumonia/data",
                                     "https://www.kaggle.com/datasets/someone/chest-xray-pneumonia?select=chest_xray"])
def test_a_datasets_address_as_copied_from_the_browser_is_its_reference(address):
    from kaggle_pipeline.kaggle_client import dataset_reference

    assert dataset_reference(address) == ("someone", "chest-xray-pneumonia")


def test_a_dataset_and_a_competition_of_one_name_never_share_a_folder(tmp_path):
    """Both would unpack into data/<name>; the second download would replace the first's files, which the
    manifest lets a download overwrite. Whichever came first keeps the folder; the other is one line."""
    source = write_csv_competition(tmp_path / "as-kaggle-ships-it")
    bin_dir, log = fake_client(tmp_path, source=source)
    assert run(tmp_path, "download", "--competition", "digit-recognizer", path_dirs=[bin_dir]).returncode == 0
    before = snapshot(tmp_path / "data")
    finished = run(tmp_path, "download", "--dataset", "someone/digit-recognizer", path_dirs=[bin_dir])
    assert_one_error_line(finished, "data/digit-recognizer: holds what 'kaggle competitions download -c "
                                    "digit-recognizer' unpacked; download this one into another folder (--data-root)")
    assert len(calls(log)) == 1 and snapshot(tmp_path / "data") == before
    # Downloading the same competition again is still allowed (its own files are replaced).
    assert run(tmp_path, "download", "--competition", "digit-recognizer", path_dirs=[bin_dir]).returncode == 0
    finished = run(tmp_path, "download", "--dataset", "someone/digit-recognizer", "--data-root", "datasets",
                   path_dirs=[bin_dir])
    assert finished.returncode == 0, finished.stderr
    assert (tmp_path / "datasets" / "digit-recognizer" / "train.csv").is_file()


def _zip_folder(archive: Path, folder: Path, inside: str | None) -> None:
    """``folder``'s files zipped as ``inside/<name>`` (or at the top, with None), then the folder removed."""
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.iterdir()):
            bundle.write(path, f"{inside}/{path.name}" if inside else path.name)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def as_kaggle_zips_it(tmp_path) -> tuple[Path, Path]:
    """CIFAR-10's layout shipped as Dogs vs. Cats and Aerial Cactus are: train.zip holding train/..., test.zip
    holding its images at the top, beside the CSVs, all inside the competition's archive."""
    reference = write_image_competition(tmp_path / "reference", count=24, test_count=6, side=4)
    source = write_image_competition(tmp_path / "source", count=24, test_count=6, side=4)
    _zip_folder(source / "train.zip", source / "train", "train")
    _zip_folder(source / "test.zip", source / "test", None)
    return reference, source


def test_archives_inside_the_download_are_unpacked_where_they_lie(tmp_path):
    from kaggle_pipeline.data import load_competition

    reference, source = as_kaggle_zips_it(tmp_path)
    bin_dir, log = fake_client(tmp_path, source=source)
    folder = tmp_path / "data" / "cifar-10"
    for attempt in ("first", "again"):  # a second download overwrites what the first unpacked, inner ones too
        finished = run(tmp_path, "download", "--competition", "cifar-10", path_dirs=[bin_dir])
        assert finished.returncode == 0, (attempt, finished.stderr)
        assert sorted(path.name for path in folder.iterdir()) == [
            ".kaggle-download.json", "sampleSubmission.csv", "solution.csv", "test", "train", "trainLabels.csv"]
    competition, expected = load_competition(folder), load_competition(reference)
    assert competition.classes == expected.classes and competition.test_ids == expected.test_ids
    for name in ("x_train", "y_train", "x_test"):
        assert (getattr(competition, name) == getattr(expected, name)).all()
    recorded = json.loads((folder / ".kaggle-download.json").read_text())["files"]
    assert "train/1.png" in recorded and "test/25.png" in recorded and "train.zip" not in recorded


def test_an_inner_archive_that_would_overwrite_a_users_file_changes_nothing(tmp_path):
    reference, source = as_kaggle_zips_it(tmp_path)
    folder = tmp_path / "data" / "cifar-10"
    (folder / "test").mkdir(parents=True)
    (folder / "test" / "25.png").write_bytes(b"the user's own")
    before = snapshot(tmp_path / "data")
    bin_dir, log = fake_client(tmp_path, source=source)
    finished = run(tmp_path, "download", "--competition", "cifar-10", path_dirs=[bin_dir])
    assert_one_error_line(finished, "test/25.png: already here, and not as an earlier download unpacked it")
    assert snapshot(tmp_path / "data") == before  # no archive, no copy of test.zip, nothing unpacked


def test_two_archives_writing_one_file_are_named_and_change_nothing(tmp_path):
    reference, source = as_kaggle_zips_it(tmp_path)
    with zipfile.ZipFile(source / "test-again.zip", "w") as bundle:  # test/25.png once more, from another archive
        bundle.writestr("test/25.png", b"another 25")
    bin_dir, log = fake_client(tmp_path, source=source)
    finished = run(tmp_path, "download", "--competition", "cifar-10", path_dirs=[bin_dir])
    assert_one_error_line(finished, "test/25.png: in two archives, cifar-10.zip: test-again.zip and "
                                    "cifar-10.zip: test.zip; unpack them yourself")
    assert snapshot(tmp_path / "data") is None  # data/ was made by the download, and removed again


def test_a_copy_left_by_a_killed_download_is_removed_by_the_next_and_nothing_else(tmp_path):
    reference, source = as_kaggle_zips_it(tmp_path)
    folder = tmp_path / "data" / "cifar-10"
    folder.mkdir(parents=True)
    (folder / ".train.zip.4242.tmp").write_bytes(b"half a copy")  # the download killed while copying train.zip
    kept = {".notes.zip.tmp": b"mine", ".train.zip.4242.tmp.bak": b"mine too", "train.zip.4242.tmp": b"visible"}
    for name, content in kept.items():
        (folder / name).write_bytes(content)
    bin_dir, log = fake_client(tmp_path, source=source)
    finished = run(tmp_path, "download", "--competition", "cifar-10", path_dirs=[bin_dir])
    assert finished.returncode == 0, finished.stderr
    assert not (folder / ".train.zip.4242.tmp").exists()
    assert {name: (folder / name).read_bytes() for name in kept} == kept


def _seven_zip_folder(archive: Path, folder: Path, inside: str) -> None:
    """``folder``'s files packed with 7-Zip's format as ``inside/<name>``, then the folder removed."""
    import py7zr

    with py7zr.SevenZipFile(archive, "w") as bundle:
        bundle.writeall(folder, inside)
    shutil.rmtree(folder)


def test_unpacking_reports_progress_with_an_eta_and_unpacks_the_same(tmp_path, monkeypatch, caplog):
    """A download of gigabytes unpacks for minutes: a line every few seconds (here every update) by megabytes,
    for zips and for the 7z archives inside them, and the same files as without the lines."""
    import logging

    import kaggle_pipeline.kaggle_client as kaggle_client

    reference = write_image_competition(tmp_path / "reference", count=24, test_count=6, side=4)
    source = write_image_competition(tmp_path / "source", count=24, test_count=6, side=4)
    _seven_zip_folder(source / "train.7z", source / "train", "train")
    bin_dir, _ = fake_client(tmp_path, source=source)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(kaggle_client, "UNPACK_PROGRESS_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline.kaggle_client"):
        folder = kaggle_client.download("cifar-10", tmp_path / "data")
    for archive in ("cifar-10.zip", "cifar-10.zip: train.7z"):
        lines = [message for message in caplog.messages if message.startswith(f"download: unpacking {archive}: ")]
        assert lines and all(" MB (" in line and "MB/s, ETA " in line for line in lines), caplog.messages
    from kaggle_pipeline.data import load_competition

    competition, expected = load_competition(folder), load_competition(reference)
    for name in ("x_train", "y_train", "x_test"):
        assert (getattr(competition, name) == getattr(expected, name)).all()


@pytest.mark.parametrize("make, expected", [
    # A symbolic link would point anywhere on the machine once unpacked.
    (lambda source: _seven_zip_with(source, lambda bundle: (
        os.symlink("/etc/passwd", source / "passwd"), bundle.write(source / "passwd", "train/passwd"))),
     "cifar-10.zip: train.7z: member 'train/passwd' is a symbolic link; unpack it yourself"),
    (lambda source: (source / "train.7z").write_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(26)),
     "cifar-10.zip: train.7z: cannot read the 7z archive"),
    # A tar may also hold hard links, devices, FIFOs and members named outside (_tar_with: train.tar.gz).
    (lambda source: _tar_with(source, ({"name": "train/passwd", "type": b"2", "linkname": "/etc/passwd"}, None)),
     "cifar-10.zip: train.tar.gz: member 'train/passwd' is a symbolic link; unpack it yourself"),
    (lambda source: _tar_with(source, ({"name": "train/again.png", "type": b"1", "linkname": "train/ok.png"}, None)),
     "cifar-10.zip: train.tar.gz: member 'train/again.png' is a hard link; unpack it yourself"),
    (lambda source: _tar_with(source, ({"name": "train/pipe", "type": b"6"}, None)),
     "cifar-10.zip: train.tar.gz: member 'train/pipe' is a device or FIFO; unpack it yourself"),
    (lambda source: _tar_with(source, ({"name": "../../escaped.png"}, b"x")),
     "cifar-10.zip: train.tar.gz: member '../../escaped.png' would be written outside"),
    (lambda source: _tar_with(source, ({"name": "/tmp/absolute-escape.png"}, b"x")),
     "cifar-10.zip: train.tar.gz: member '/tmp/absolute-escape.png' would be written outside"),
    (lambda source: (source / "train.tgz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(12)),
     "cifar-10.zip: train.tgz: cannot read the tar archive"),
])
def test_an_archive_inside_that_cannot_be_unpacked_safely_changes_nothing(make, expected, tmp_path):
    source = write_image_competition(tmp_path / "source", count=24, test_count=6, side=4)
    make(source)
    bin_dir, log = fake_client(tmp_path, source=source)
    finished = run(tmp_path, "download", "--competition", "cifar-10", path_dirs=[bin_dir])
    assert_one_error_line(finished, expected)
    assert snapshot(tmp_path / "data") is None
    assert not (tmp_path / "escaped.png").exists() and not Path("/tmp/absolute-escape.png").exists()


def _seven_zip_with(source: Path, add) -> None:
    import py7zr

    with py7zr.SevenZipFile(source / "train.7z", "w") as bundle:
        add(bundle)
    if (source / "passwd").is_symlink():
        (source / "passwd").unlink()


def _tar_folder(archive: Path, folder: Path, inside: str | None, mode: str) -> None:
    """``folder``'s files in a tar as ``./inside/<name>`` (the ``tar -C <dir> .`` shape, with its "." folder) or
    at the top, then the folder removed."""
    import tarfile

    with tarfile.open(archive, mode) as bundle:
        bundle.add(folder, "." if inside is None else f"./{inside}")
    shutil.rmtree(folder)


@pytest.mark.parametrize("suffix, test_inside", [(".7z", "test"), (".tar", None), (".tar.gz", "test"), (".tgz", None),
                                                (".tar.xz", None)])
def test_7z_and_tar_archives_inside_the_download_are_unpacked_like_zips(suffix, test_inside, tmp_path):
    """CIFAR-10 as Kaggle ships it: train.7z and test.7z inside cifar-10.zip (the Iceberg Classifier packs its
    JSON the same way); FER2013's fer2013.tar.gz, datasets that re-share images.tar.gz. Unpacked where they lie
    (train.tar holding train/..., test.tgz holding its images at the top: into test/) and not left behind."""
    from kaggle_pipeline.data import load_competition

    reference = write_image_competition(tmp_path / "reference", count=24, test_count=6, side=4)
    source = write_image_competition(tmp_path / "source", count=24, test_count=6, side=4)
    if suffix == ".7z":
        _seven_zip_folder(source / "train.7z", source / "train", "train")
        _seven_zip_folder(source / "test.7z", source / "test", "test")
    else:
        mode = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.xz": "w:xz"}[suffix]
        _tar_folder(source / f"train{suffix}", source / "train", "train", mode)
        _tar_folder(source / f"test{suffix}", source / "test", test_inside, mode)
    bin_dir, log = fake_client(tmp_path, source=source)
    folder = tmp_path / "data" / "cifar-10"
    for attempt in ("first", "again"):  # a second download overwrites what the first unpacked
        finished = run(tmp_path, "download", "--competition", "cifar-10", path_dirs=[bin_dir])
        assert finished.returncode == 0, (attempt, finished.stderr)
        assert sorted(path.name for path in folder.iterdir()) == [
            ".kaggle-download.json", "sampleSubmission.csv", "solution.csv", "test", "train", "trainLabels.csv"]
    competition, expected = load_competition(folder), load_competition(reference)
    for name in ("x_train", "y_train", "x_test"):
        assert (getattr(competition, name) == getattr(expected, name)).all()
    recorded = json.loads((folder / ".kaggle-download.json").read_text())["files"]
    assert "train/1.png" in recorded and "test/25.png" in recorded and f"train{suffix}" not in recorded


def _tar_with(source: Path, *members) -> None:
    """train.tar.gz holding one image, then ``members``: (TarInfo settings, content or None)."""
    import io
    import tarfile

    with tarfile.open(source / "train.tar.gz", "w:gz") as bundle:
        bundle.addfile(tarfile.TarInfo("train/ok.png"), io.BytesIO(b""))
        for settings, content in members:
            info = tarfile.TarInfo(settings.pop("name"))
            for key, value in settings.items():
                setattr(info, key, value)
            info.size = len(content or b"")
            bundle.addfile(info, io.BytesIO(content) if content else None)
