"""Kaggle's own command-line client, driven for the two steps users did by hand: download and submit.

``download`` runs ``kaggle competitions download -c <slug> -p data/<slug>`` and unpacks the archive there.
``submit_to_kaggle`` checks the competition's ``latest.csv`` against its sample submission and classes
(the same rules ``make submit`` applies before writing) and runs
``kaggle competitions submit -c <slug> -f <file> -m <message>``.

The client must be on PATH (``pip install kaggle``) with credentials in ``~/.kaggle/kaggle.json`` (or
``$KAGGLE_CONFIG_DIR``), or ``KAGGLE_USERNAME`` and ``KAGGLE_KEY`` in the environment. Credentials are
only checked for presence; they are never read into this process's output or logs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.progress import say


def kaggle_command() -> str:
    """The client's path, after checking that it and some credentials exist."""
    client = shutil.which("kaggle")
    if client is None:
        raise PipelineError("kaggle: command not found; install Kaggle's client with 'pip install kaggle' "
                            "(or '.venv/bin/pip install kaggle')")
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    has_environment = bool(os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"))
    if not has_environment and not (config_dir / "kaggle.json").is_file():
        raise PipelineError(f"{config_dir / 'kaggle.json'}: no Kaggle credentials; download an API token from your "
                            "Kaggle account settings to that file (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY")
    return client


def _run(arguments: list[str]) -> None:
    say(f"kaggle: {' '.join(arguments[1:])}")
    finished = subprocess.run(arguments, capture_output=True, text=True)
    if finished.returncode != 0:
        output = (finished.stderr or finished.stdout).strip().splitlines()
        raise PipelineError(f"kaggle {arguments[1]} {arguments[2]} failed (exit {finished.returncode}): "
                            f"{output[-1] if output else 'no message'}")


def download(slug: str, data_root: Path = Path("data")) -> Path:
    """Download and unpack competition ``slug`` into ``data_root/slug``; returns that folder."""
    _check_slug(slug)
    folder = Path(data_root) / slug
    client = kaggle_command()
    folder.mkdir(parents=True, exist_ok=True)
    _run([client, "competitions", "download", "-c", slug, "-p", str(folder)])
    archives = sorted(folder.glob("*.zip"))
    if not archives:
        raise PipelineError(f"{folder}: the client wrote no .zip archive")
    for archive in archives:
        _unpack(archive, folder)
        archive.unlink()
    say(f"download: {slug} unpacked into {folder}")
    return folder


def _unpack(archive: Path, folder: Path) -> None:
    """Extract, refusing members that would land outside ``folder`` (absolute paths, '..')."""
    root = folder.resolve()
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                target = (folder / member).resolve()
                if root not in target.parents and target != root:
                    raise PipelineError(f"{archive}: member {member!r} would be written outside {folder}")
            bundle.extractall(folder)
    except zipfile.BadZipFile as error:
        raise PipelineError(f"{archive}: not a zip archive ({error})") from None


def submit_to_kaggle(slug: str, workspace_competition, submission: Path, message: str) -> None:
    """Check ``submission`` like ``make submit`` does, then hand it to the client."""
    from kaggle_pipeline.data import read_sample_submission, read_submission_table
    from kaggle_pipeline.submit import validate_submission

    _check_slug(slug)
    if not message.strip():
        raise PipelineError("MESSAGE=: Kaggle needs a submission message")
    competition = workspace_competition
    validate_submission(read_submission_table(submission), read_sample_submission(competition.sample_submission),
                        competition.classes, where=str(submission))
    client = kaggle_command()
    _run([client, "competitions", "submit", "-c", slug, "-f", str(submission), "-m", message])
    say(f"submit-kaggle: {submission} sent to {slug}; see its leaderboard for the score")


def _check_slug(slug: str | None) -> None:
    if not slug or not all(character.isalnum() or character == "-" for character in slug):
        raise PipelineError(f"COMPETITION={slug!r}: give the competition's slug, e.g. digit-recognizer")
