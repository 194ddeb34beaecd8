"""The Kaggle targets drive the real client's command line; a fake ``kaggle`` first on PATH records it."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

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
    archive = folder / (slug + ".zip")
    if {skip_existing!r} and archive.exists():
        print(archive.name + ": Skipping, found more recently modified local copy (use --force to force download)")
    else:
        with zipfile.ZipFile(archive, "w") as bundle:
            for path in sorted(source.iterdir()):
                bundle.write(path, path.name)
sys.stdout.write({stdout!r})
sys.stderr.write({stderr!r})
sys.exit({exit_code!r})
"""
FORBIDDEN = "403 - Forbidden: you must accept this competition's rules\n"


def fake_client(tmp_path, source=None, fail=False, stdout="", stderr=None, exit_code=None, skip_existing=False):
    """A ``kaggle`` that logs its arguments, writes <slug>.zip of ``source`` on download, then prints and exits."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    log = tmp_path / "kaggle-calls.jsonl"
    client = folder / "kaggle"
    client.write_text(FAKE_CLIENT.format(
        python=sys.executable, log=str(log), source=str(source or tmp_path), skip_existing=skip_existing,
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


@pytest.mark.parametrize("problem", ["no client", "no credentials", "client fails"])
def test_client_problems_are_one_line(tmp_path, problem):
    source = write_csv_competition(tmp_path / "source")
    bin_dir, log = fake_client(tmp_path, source=source, fail=problem == "client fails")
    finished = run(tmp_path, "download", "--competition", "titanic",
                   path_dirs=[] if problem == "no client" else [bin_dir], credentials=problem != "no credentials")
    assert finished.returncode == 2 and finished.stderr.count("error:") == 1 and "Traceback" not in finished.stderr
    assert not (tmp_path / "data").exists()  # no folder left behind, not even when the client ran and failed
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


@pytest.mark.parametrize("slug", ["", "../etc", "a b", "x;touch pwned", "-c", "--force", "dïgit", "t\nx", "a/b"])
def test_a_bad_slug_is_refused_before_anything(tmp_path, monkeypatch, slug):
    from kaggle_pipeline.errors import PipelineError
    from kaggle_pipeline.kaggle_client import download

    bin_dir, log = fake_client(tmp_path)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PipelineError, match="^COMPETITION="):
        download(slug, tmp_path / "data")
    assert not log.exists() and not (tmp_path / "data").exists() and not (tmp_path / "pwned").exists()
