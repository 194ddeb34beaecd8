"""Kaggle's own command-line client, driven for the two steps users did by hand: download and submit.

``download`` runs ``kaggle competitions download -c <slug> -p data/<slug>`` and unpacks the archive there;
``download_dataset`` does the same for a labelled dataset (``kaggle datasets download <owner>/<name> -p
data/<name>``), which ``data --dataset`` then makes a competition.
``submit_to_kaggle`` checks the competition's ``latest.csv`` against its sample submission and classes
(the same rules ``make submit`` applies before writing) and runs
``kaggle competitions submit -c <slug> -f <file> -m <message>``.

The client is the ``[kaggle]`` extra (``pip install 'kaggle-pipeline[kaggle]'``; ``make setup`` installs it),
found on PATH or, failing that, beside this interpreter (``.venv/bin/kaggle`` when the venv is not
activated). Signing in is the client's business: it accepts ``KAGGLE_API_TOKEN`` (a token, or a file holding
one), ``~/.kaggle/access_token``, ``kaggle auth login`` (OAuth, cached in ``~/.kaggle/credentials.json``), and
the legacy ``kaggle.json`` (in ``$KAGGLE_CONFIG_DIR``, ``~/.kaggle`` or ``~/.config/kaggle``) or
``KAGGLE_USERNAME``/``KAGGLE_KEY``, in an order of its own that changes between versions; so nothing here
second-guesses it. When it is not signed in (or its credentials are refused) it prints a page of help and
exits 1: that is passed on as one line naming the ways to sign in. Credentials are read only to mask them:
when the client fails, its last line is passed on with every credential in it replaced by ``***`` (the key
and token from the environment, kaggle.json, access_token and credentials.json, and anything shaped like
one: long hex runs, ``KGAT_`` tokens, ``key=``, ``token=``, ``"key": "..."``, Bearer and Basic
authorizations, ``user:password@`` in URLs). A client still running after its step's time limit
(``CLIENT_TIMEOUT_SECONDS``; ``KAGGLE_PIPELINE_CLIENT_TIMEOUT`` in seconds sets both) is killed: one line too.

What ``download`` deletes and overwrites (it deletes only what it created):

- It notes the ``*.zip`` files already in ``data/<slug>/`` (name, size, mtime) before running the client.
  Only the archives the client wrote are unpacked: new names, or names already there whose size or mtime
  changed (the client replaced them). Only new names are deleted after unpacking; an archive whose name
  was already there is kept, even if the client rewrote it. A zip that the client left alone (Kaggle's
  client skips a download when an up-to-date local copy exists) is neither unpacked nor deleted; when it is
  the only archive, download stops and says so.
- Archives inside the client's archives (Dogs vs. Cats' ``train.zip``; CIFAR-10's ``train.7z`` and the Iceberg
  Classifier's ``train.json.7z``, read with py7zr; FER2013's ``fer2013.tar.gz``, datasets' ``images.tar``) are
  unpacked too, one level down,
  from copies under hidden names (``INNER_COPY``) that are removed afterwards, or by the next download where
  a kill left one; the inner archives themselves are never written. Two archives writing one file stop
  the download, and so does a symbolic link inside a 7z archive (or any link, device or FIFO inside a tar).
- Unpacking overwrites only files that an earlier ``download`` unpacked and nobody changed since: each
  download records the files it unpacked, with size and mtime, in ``data/<slug>/.kaggle-download.json``,
  so downloading again into the same folder works. A member that would overwrite any other file (the
  user's own, or one changed since it was unpacked) stops the download before anything is unpacked.
- Every refusal leaves the disk as it was: the archives this download created are deleted and a folder it
  created (data/<slug>, data/) is removed again when it is empty.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sysconfig
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import first_line
from kaggle_pipeline.progress import RateProgress, megabytes

logger = logging.getLogger(__name__)

MANIFEST = ".kaggle-download.json"
# How long the client may take before it is stopped and the step fails (a stalled network would otherwise
# hang a night's job): generous for a download of many gigabytes, short for one CSV. The environment
# variable sets both, in seconds.
CLIENT_TIMEOUT_SECONDS = {"download": 4 * 3600, "submit": 15 * 60}
TIMEOUT_VARIABLE = "KAGGLE_PIPELINE_CLIENT_TIMEOUT"
UNPACK_PROGRESS_SECONDS = 5.0


def _config_dirs() -> list[Path]:
    """Where the client looks for kaggle.json, access_token and credentials.json (any of them, by version)."""
    folders = [Path.home() / ".kaggle",
               Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"]
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        folders.insert(0, Path(os.environ["KAGGLE_CONFIG_DIR"]))
    return folders


def installed_client() -> str | None:
    """Kaggle's client: ``kaggle`` on PATH, else the one installed beside this interpreter (a venv not activated)."""
    client = shutil.which("kaggle")
    if client is None:
        client = shutil.which("kaggle", path=sysconfig.get_path("scripts"))
    return client


def kaggle_command() -> str:
    """The client's path. Whether it is signed in, it says itself (see ``_run``)."""
    client = installed_client()
    if client is None:
        raise PipelineError("kaggle: command not found; install Kaggle's client with "
                            "\"pip install 'kaggle-pipeline[kaggle]'\" (make setup installs it)")
    return client


# What the client prints (to stdout, exit 1) when it has no credentials or Kaggle refused them: kaggle 2.x's
# page of help, and kaggle 1.x's "Could not find kaggle.json" / "Missing username in configuration".
_NOT_SIGNED_IN = re.compile(r"Authentication required to call the Kaggle API|Could not find kaggle\.json|"
                            r"Missing username in configuration")
NOT_SIGNED_IN = ("Kaggle's client is not signed in (or Kaggle refused its credentials): run 'kaggle auth login', "
                 "or put an API token from kaggle.com/settings/api in KAGGLE_API_TOKEN or ~/.kaggle/access_token "
                 "(a legacy ~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY works too)")


# Masking credentials in the client's messages ---------------------------------------------------
_SHORTEST_SECRET = 4  # a known value shorter than this is not masked on its own (it would mask ordinary words)
_CREDENTIAL_PATTERNS = [
    # "key": "...", 'token': '...' (JSON or Python dict text)
    (re.compile(r"""(["'][\w-]*(?:key|token|secret|password)["']\s*:\s*)(["'])(?:(?!\2).)*\2""", re.I),
     r"\1\2***\2"),
    # key=..., api_key=..., token=..., KAGGLE_KEY=..., password=...
    (re.compile(r"""\b([\w-]*(?:key|token|secret|password)\s*=\s*)["']?[^\s"',;&)]+["']?""", re.I), r"\1***"),
    # Authorization: Bearer ... / Basic ...
    (re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.I), r"\1 ***"),
    # https://user:secret@host
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1***@"),
    (re.compile(r"KGAT_[A-Za-z0-9_-]+"), "***"),
    (re.compile(r"[0-9a-fA-F]{20,}"), "***"),
]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace") if path.is_file() else ""
    except OSError:
        return ""


def _known_secrets() -> list[str]:
    """The credential values this user has: environment, kaggle.json's key, access_token, credentials.json."""
    values = [os.environ.get("KAGGLE_KEY", ""), os.environ.get("KAGGLE_API_TOKEN", "")]
    if values[1]:
        values.append(_read_text(Path(values[1])))  # KAGGLE_API_TOKEN may name a file holding the token
    for folder in _config_dirs():
        for name in ("access_token", "access_token.txt"):
            values.append(_read_text(folder / name))
        for name, fields in (("kaggle.json", ("key",)), ("credentials.json", ("refresh_token", "access_token"))):
            try:
                stored = json.loads(_read_text(folder / name) or "{}")
                values += [str(stored.get(field, "")) for field in fields]
            except (ValueError, AttributeError):
                pass
    return sorted({value.strip() for value in values if len(value.strip()) >= _SHORTEST_SECRET}, key=len, reverse=True)


def mask_credentials(text: str) -> str:
    """``text`` with the user's credentials, and anything that looks like one, replaced by ``***``."""
    for secret in _known_secrets():
        text = text.replace(secret, "***")
    for pattern, replacement in _CREDENTIAL_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _last_line(*outputs: str) -> str:
    """The last non-blank line of the first output that has one, as one printable line."""
    for output in outputs:
        lines = [line.strip() for line in _ANSI_ESCAPE.sub("", output or "").splitlines() if line.strip()]
        if lines:
            return "".join(character if character.isprintable() else " " for character in lines[-1])
    return "no message"


def _client_timeout(step: str) -> float:
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return CLIENT_TIMEOUT_SECONDS[step]
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise PipelineError(f"{TIMEOUT_VARIABLE}={text!r}: give the client's time limit in seconds, a number above 0")
    return seconds


def _run(arguments: list[str]) -> None:
    """Run the client (``arguments[1:3]`` are its group and step); its failure, or no end within the step's
    time limit, is one PipelineError line."""
    timeout = _client_timeout(arguments[2])
    logger.info(f"kaggle: {' '.join(arguments[1:])}")
    try:
        finished = subprocess.run(arguments, capture_output=True, text=True, errors="replace", timeout=timeout)
    except OSError as error:
        raise PipelineError(f"{arguments[0]}: cannot run Kaggle's client ({error.strerror or error})") from None
    except subprocess.TimeoutExpired:  # subprocess.run has killed the client
        raise PipelineError(f"kaggle {arguments[1]} {arguments[2]}: no answer after {timeout:g} s, stopped; check "
                            f"the network, then run it again ({TIMEOUT_VARIABLE}= sets the limit in seconds)") from None
    if finished.returncode != 0:
        if _NOT_SIGNED_IN.search(f"{finished.stdout}\n{finished.stderr}"):
            raise PipelineError(f"kaggle {arguments[1]} {arguments[2]} failed (exit {finished.returncode}): "
                                f"{NOT_SIGNED_IN}")
        # Masked in the whole output, before its last line is picked.
        message = _last_line(mask_credentials(finished.stderr or ""), mask_credentials(finished.stdout or ""))
        raise PipelineError(f"kaggle {arguments[1]} {arguments[2]} failed (exit {finished.returncode}): {message}")


# Download -----------------------------------------------------------------------------------------
def _zip_state(folder: Path) -> dict[Path, tuple[int, int]]:
    state = {}
    for archive in folder.glob("*.zip") if folder.is_dir() else ():
        try:
            details = archive.stat()
        except OSError:
            continue
        state[archive] = (details.st_size, details.st_mtime_ns)
    return state


def download(slug: str, data_root: Path = Path("data")) -> Path:
    """Download and unpack competition ``slug`` into ``data_root/slug``; returns that folder."""
    _check_slug(slug)
    folder = _download(["competitions", "download", "-c", slug], Path(data_root) / slug)
    logger.info(f"download: {slug} unpacked into {folder}")
    return folder


def download_dataset(reference: str, data_root: Path = Path("data")) -> Path:
    """Download and unpack dataset ``reference`` (``<owner>/<name>``, or its kaggle.com address) into
    ``data_root/<name>``; returns that folder."""
    owner, name = dataset_reference(reference)
    folder = _download(["datasets", "download", f"{owner}/{name}"], Path(data_root) / name)
    logger.info(f"download: {owner}/{name} unpacked into {folder}; next: make dataset DATASET={folder}")
    return folder


def unpack_site_download(archive: Path, folder: Path) -> bool:
    """Unpack a zip downloaded from Kaggle's site (a dataset's ``archive.zip``) into ``folder`` with the download's
    guarantees (every member checked first, archives inside it unpacked too, the files recorded in the manifest);
    the archive is only read. False when ``folder`` already holds this archive, unchanged, unpacked. A folder
    not made from it is refused; on any failure the folder this made is removed again."""
    details = os.stat(archive)
    source = f"unpack {os.path.realpath(archive)} {details.st_size} {details.st_mtime_ns}"
    if os.path.lexists(folder):
        earlier, _ = _read_manifest(folder) if folder.is_dir() else (None, {})
        if earlier == source:
            return False
        raise PipelineError(f"{folder}: already here (where {archive.name} would be unpacked); move it away, or "
                            "unpack the archive yourself and pass that folder")
    try:
        folder.mkdir(parents=True)
        _unpack_all([archive], folder, source, {})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # made by this call, all of it
        raise
    return True


def dataset_reference(reference: str) -> tuple[str, str]:
    """``(owner, name)`` from ``<owner>/<name>`` as the client takes it, or from the dataset's address as users
    copy it from the browser (``https://www.kaggle.com/datasets/<owner>/<name>``, its Data tab too)."""
    address = _DATASET_ADDRESS.fullmatch(reference)
    if address is None and re.search(r"kaggle\.com/datasets/[^/]+/[^/]+/versions/\d+", reference):
        raise PipelineError(f"KAGGLE_DATASET={reference!r}: the address of one version, but the client downloads a "
                            "dataset's current version; give the dataset as <owner>/<name> (or its address without "
                            "/versions/...)")
    parts = list(address.groups()) if address else reference.split("/")
    if len(parts) != 2 or not all(_DATASET_SLUG.fullmatch(part) for part in parts):
        raise PipelineError(f"KAGGLE_DATASET={reference!r}: give the dataset as <owner>/<name>, e.g. "
                            "paultimothymooney/chest-xray-pneumonia")
    return parts[0], parts[1]


_DATASET_ADDRESS = re.compile(r"(?:https?://)?(?:www\.)?kaggle\.com/datasets/([^/?#]+)/([^/?#]+)(?:/data)?/?(?:[?#].*)?")
# Kaggle's user names and dataset slugs: ASCII letters, digits, dashes and underscores, starting with a letter or
# digit, so that neither is ever taken for one of the client's options.
_DATASET_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*", re.ASCII)


def _download(step: list[str], folder: Path) -> Path:
    """Run the client's download ``step`` into ``folder`` and unpack what it wrote there (module docstring)."""
    data_root, source = folder.parent, " ".join(step)
    client = kaggle_command()
    if folder.exists() and not folder.is_dir():
        raise PipelineError(f"{folder}: not a folder; move it away, then download again")
    # A competition and a dataset of one name would share data/<name>; one download must not replace the
    # other's files (which the manifest alone would allow: both unpacked them).
    earlier, unpacked = _read_manifest(folder)
    if earlier not in (None, source):
        raise PipelineError(f"{folder}: holds what 'kaggle {earlier}' unpacked; download this one into another "
                            "folder (--data-root)")
    created_folders = [path for path in (folder, Path(data_root)) if not path.exists()]
    before = _zip_state(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _run([client, *step, "-p", str(folder)])
        after = _zip_state(folder)
        written = sorted(archive for archive, state in after.items() if before.get(archive) != state)
        if not written:
            kept = ", ".join(archive.name for archive in sorted(after))
            raise PipelineError(f"{folder}: the client wrote no .zip archive" +
                                (f"; {kept} was already here and is left alone: unpack it yourself, or move it "
                                 "away and download again" if kept else ""))
        _unpack_all(written, folder, source, unpacked)
    except BaseException:
        # Also when the client failed or was interrupted half-way: what it wrote under a new name goes.
        for archive in _zip_state(folder):
            if archive not in before:
                archive.unlink(missing_ok=True)
        for path in created_folders:
            try:
                path.rmdir()
            except OSError:
                pass
        raise
    for archive in written:
        if archive not in before:
            archive.unlink()
    return folder


def _read_manifest(folder: Path) -> tuple[str | None, dict[str, list[int]]]:
    """The client's step that made the folder's earlier downloads (None before it was recorded), and the files
    they unpacked."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = {str(name): list(state) for name, state in manifest.get("files", {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return None, {}
    source = manifest.get("source")
    return source if isinstance(source, str) else None, files


@dataclass
class _Unpacking:
    """One archive to unpack: the client's, or the copy of an archive found inside one."""

    archive: Path
    shown: str  # how errors name it: the client's archive, or "<archive>: <member>" for a copy
    destination: Path  # the folder its members go into
    names: list[str]  # its file members as the manifest keys them: relative to the download folder
    skip: frozenset[str] = frozenset()  # members not unpacked here: archives inside it, unpacked from their copies


# The hidden copy of an archive found inside another, while it is checked and unpacked: ".train.zip.<pid>.tmp".
INNER_COPY = re.compile(r"\.[^/]+\.(zip|7z|tar|tgz|tar\.gz|tar\.bz2|tar\.xz)\.\d+\.tmp", re.IGNORECASE)
TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")
INNER_ARCHIVE_SUFFIXES = (".zip", ".7z", *TAR_SUFFIXES)
SEVEN_ZIP_SIGNATURE = b"7z\xbc\xaf\x27\x1c"


@dataclass(frozen=True)
class _Member:
    """One member of an archive, zip or 7z alike: its name inside the archive and whether it is a folder."""

    filename: str
    is_folder: bool


def _remove_stale_copies(folder: Path) -> None:
    """Copies left by a download that was killed while it unpacked; nothing else matches their names."""
    for path in folder.iterdir() if folder.is_dir() else ():
        if INNER_COPY.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            path.unlink()


def _unpack_all(archives: list[Path], folder: Path, step: str, manifest: dict[str, list[int]]) -> None:
    """Check every member of every archive, and of the archives inside them, then unpack them all and record
    what was unpacked. Kaggle's older competitions ship archives in the archive (Dogs vs. Cats: ``train.zip``
    and ``test1.zip``; Aerial Cactus: ``train.zip``, ``test.zip``): each is unpacked where it lies, into a folder
    named after it when its members do not share one top folder, and is not left behind as a ``.zip``.
    ``manifest``: the files earlier downloads unpacked (``_read_manifest``), which may be replaced."""
    plans: list[_Unpacking] = []
    copies: list[Path] = []
    try:
        for archive in archives:
            listing = _read_listing(archive)  # each archive's listing is read once, then checked and planned from
            inner = _inner_archive_names(listing)
            plans.append(_Unpacking(archive, archive.name, folder,
                                    _checked_members(listing, archive, folder, folder, manifest, skip=inner),
                                    frozenset(inner)))
            for name in inner:
                copy = folder / f".{Path(name).name}.{os.getpid()}.tmp"  # hidden: never read as competition data
                copies.append(copy)
                with zipfile.ZipFile(archive) as bundle, bundle.open(name) as source, open(copy, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                shown = f"{archive}: {name}"
                inner_listing = _read_listing(copy, shown)
                stem = next(Path(name).name[:-len(suffix)] for suffix in sorted(INNER_ARCHIVE_SUFFIXES, key=len, reverse=True)
                            if name.lower().endswith(suffix))  # images.tar.gz: images
                destination = _inner_destination(inner_listing, (folder / name).parent, stem)
                plans.append(_Unpacking(copy, f"{archive.name}: {name}", destination, _checked_members(
                    inner_listing, copy, destination, folder, manifest, shown=shown)))
        _check_each_member_once(plans, folder)
        for plan in plans:
            _unpack(plan.archive, plan.destination, plan.skip, plan.shown)
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)
    _remove_stale_copies(folder)  # only once unpacked: a refusal leaves the folder as it was
    for plan in plans:
        for name in plan.names:
            details = (folder / name).stat()
            manifest[name] = [details.st_size, details.st_mtime_ns]
    try:
        (folder / MANIFEST).write_text(json.dumps({"source": step, "files": manifest}, indent=1, sort_keys=True) + "\n")
    except OSError as error:
        raise PipelineError(f"{folder / MANIFEST}: cannot record the unpacked files ({error.strerror})") from None


def _is_tar(archive: Path) -> bool:
    """A tar archive, by its name (an inner archive's copy keeps its suffix: ``.fer2013.tar.gz.<pid>.tmp``)."""
    copy = INNER_COPY.fullmatch(archive.name)
    name = f".{copy.group(1)}" if copy else archive.name
    return name.lower().endswith(TAR_SUFFIXES)


def _tar_errors() -> tuple[type[BaseException], ...]:
    import lzma
    import zlib

    return (tarfile.TarError, lzma.LZMAError, zlib.error, EOFError, ValueError, OSError)


def _is_seven_zip(archive: Path) -> bool:
    with open(archive, "rb") as handle:
        return handle.read(len(SEVEN_ZIP_SIGNATURE)) == SEVEN_ZIP_SIGNATURE


def _seven_zip_errors() -> tuple[type[BaseException], ...]:
    import lzma

    import py7zr.exceptions

    return (py7zr.exceptions.ArchiveError, lzma.LZMAError, EOFError, ValueError, KeyError, OSError)


def _seven_zip_progress(progress: RateProgress):
    """py7zr's extraction callback, as progress lines (CIFAR-10's test.7z is 300,000 images)."""
    from py7zr.callbacks import ExtractCallback

    class Progress(ExtractCallback):
        unpacked = 0

        def report_end(self, processing_file_path, wrote_bytes):
            self.unpacked += int(wrote_bytes)
            progress.update(self.unpacked)

        def report_start_preparation(self): pass
        def report_start(self, processing_file_path, processing_bytes): pass
        def report_update(self, decompressed_bytes): pass
        def report_warning(self, message): pass
        def report_postprocess(self): pass

    return Progress()


def _read_listing(archive: Path, shown: str | None = None) -> list[_Member]:
    """The archive's members, a zip's, a tar's (by its name) or (by its signature) a 7z's; a symbolic link in a
    7z, and anything but files and folders in a tar (links, devices, FIFOs), is refused."""
    if _is_tar(archive):
        try:
            with tarfile.open(archive) as bundle:
                members = bundle.getmembers()
        except _tar_errors() as error:
            raise PipelineError(f"{shown or archive}: cannot read the tar archive ({first_line(error).rstrip(':')})") from None
        for member in members:
            if not (member.isfile() or member.isdir()):
                kind = "symbolic link" if member.issym() else "hard link" if member.islnk() else "device or FIFO"
                raise PipelineError(f"{shown or archive}: member {member.name!r} is a {kind}; unpack it yourself")
        return [_Member(member.name, member.isdir()) for member in members]
    try:
        if not _is_seven_zip(archive):
            with zipfile.ZipFile(archive) as bundle:
                return [_Member(info.filename, info.is_dir()) for info in bundle.infolist()]
    except (zipfile.BadZipFile, OSError) as error:
        raise PipelineError(f"{shown or archive}: not a zip archive ({error})") from None
    import py7zr

    try:
        with py7zr.SevenZipFile(archive) as bundle:
            files = list(bundle.files)
    except _seven_zip_errors() as error:
        raise PipelineError(f"{shown or archive}: cannot read the 7z archive ({error or type(error).__name__})") from None
    for info in files:
        if info.is_symlink:
            raise PipelineError(f"{shown or archive}: member {info.filename!r} is a symbolic link; unpack it yourself")
    return [_Member(info.filename, info.is_directory) for info in files]


def _inner_archive_names(listing: list[_Member]) -> list[str]:
    """The members that are zip or 7z archives themselves (one level: an archive in those stays a file)."""
    return [member.filename for member in listing
            if not member.is_folder and member.filename.lower().endswith(INNER_ARCHIVE_SUFFIXES)]


def _inner_destination(listing: list[_Member], parent: Path, stem: str) -> Path:
    """Where an archive found inside another unpacks: beside it when all its members lie in one top folder
    (``train.zip`` holding ``train/...``), else into a folder named after it (``train.zip`` holding images)."""
    paths = [(PurePosixPath(member.filename).parts, member.is_folder) for member in listing]
    paths = [(parts, is_folder) for parts, is_folder in paths if parts]  # a tar's "." folder
    tops = {parts[0] for parts, _ in paths}
    nested = all(len(parts) > 1 or is_folder for parts, is_folder in paths)
    return parent if len(tops) == 1 and nested else parent / stem


def _checked_members(listing: list[_Member], archive: Path, destination: Path, folder: Path,
                     manifest: dict[str, list[int]], skip=(), shown: str | None = None) -> list[str]:
    """The archive's file members, relative to ``folder``; refuses one that would land outside ``folder`` or
    overwrite a file not from a download."""
    root = folder.resolve()
    names = []
    for member in listing:
        if member.filename in skip:
            continue
        target = (destination / member.filename).resolve()
        if root not in target.parents and target != root:
            raise PipelineError(f"{shown or archive}: member {member.filename!r} would be written outside {folder}")
        relative = target.relative_to(root).as_posix()
        if member.is_folder:
            if target.exists() and not target.is_dir():
                raise PipelineError(f"{target}: already here and not a folder; move it away, then download again")
            continue
        if relative == MANIFEST:
            raise PipelineError(f"{shown or archive}: member {member.filename!r} would replace the download record")
        if target.exists() or target.is_symlink():
            details = target.lstat()
            if not target.is_file() or target.is_symlink() or \
                    manifest.get(relative) != [details.st_size, details.st_mtime_ns]:
                raise PipelineError(f"{target}: already here, and not as an earlier download unpacked it; "
                                    "move it away, then download again")
        names.append(relative)
    return names


def _check_each_member_once(plans: list[_Unpacking], folder: Path) -> None:
    """Two archives writing one file (``train.zip`` and the outer archive both holding ``train/1.jpg``) would
    leave whichever came last: refused, naming both."""
    first: dict[str, str] = {}
    for plan in plans:
        for name in plan.names:
            if name in first:
                raise PipelineError(f"{folder / name}: in two archives, {first[name]} and {plan.shown}; "
                                    "unpack them yourself")
            first[name] = plan.shown


def _unpack(archive: Path, folder: Path, skip=frozenset(), shown: str | None = None) -> None:
    """Extract, refusing members that would land outside ``folder`` (absolute paths, '..'); progress lines name
    the archive as ``shown``."""
    root = folder.resolve()
    label = f"download: unpacking {shown or archive.name}"
    if _is_tar(archive):  # its members checked already: files and folders inside the download folder
        try:
            with tarfile.open(archive) as bundle:
                members = [member for member in bundle.getmembers() if member.name not in skip]
                progress = RateProgress(logger.info, label, sum(member.size for member in members),
                                        UNPACK_PROGRESS_SECONDS, megabytes)
                unpacked = 0
                for member in members:
                    # Python's "data" filter refuses what the listing refused too, where the interpreter has it.
                    bundle.extract(member, folder, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
                    unpacked += member.size
                    progress.update(unpacked)
        except _tar_errors() as error:
            raise PipelineError(f"{archive}: cannot unpack into {folder} ({first_line(error)})") from None
        return
    if _is_seven_zip(archive):  # its members checked already (_read_listing, _checked_members)
        import py7zr

        try:
            with py7zr.SevenZipFile(archive) as bundle:
                members = [member for member in bundle.list() if member.filename not in skip]
            progress = RateProgress(logger.info, label, sum(member.uncompressed or 0 for member in members),
                                    UNPACK_PROGRESS_SECONDS, megabytes)
            with py7zr.SevenZipFile(archive) as bundle:
                bundle.extract(path=folder, targets=[member.filename for member in members],
                               callback=_seven_zip_progress(progress))
        except _seven_zip_errors() as error:
            raise PipelineError(f"{archive}: cannot unpack into {folder} ({error or type(error).__name__})") from None
        return
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [member for member in bundle.infolist() if member.filename not in skip]
            for member in members:
                target = (folder / member.filename).resolve()
                if root not in target.parents and target != root:
                    raise PipelineError(f"{archive}: member {member.filename!r} would be written outside {folder}")
            # A competition's archive can be gigabytes (Dogs vs. Cats: 25,000 photos): progress by bytes.
            progress = RateProgress(logger.info, label, sum(member.file_size for member in members),
                                    UNPACK_PROGRESS_SECONDS, megabytes)
            unpacked = 0
            for member in members:
                bundle.extract(member, folder)
                unpacked += member.file_size
                progress.update(unpacked)
    except zipfile.BadZipFile as error:
        raise PipelineError(f"{archive}: not a zip archive ({error})") from None
    except OSError as error:
        raise PipelineError(f"{archive}: cannot unpack into {folder} ({error.strerror or error})") from None


def submit_to_kaggle(slug: str, workspace_competition, submission: Path, message: str,
                     submission_format: str | None = None) -> None:
    """Check ``submission`` like ``make submit`` does, then hand it to the client."""
    from kaggle_pipeline.data import read_sample_submission, read_submission_table
    from kaggle_pipeline.submit import validate_submission

    _check_slug(slug)
    if not message.strip():
        raise PipelineError("MESSAGE=: Kaggle needs a submission message")
    competition = workspace_competition
    validate_submission(read_submission_table(submission), read_sample_submission(competition.sample_submission),
                        competition.classes, where=str(submission),
                        submission_format=submission_format or competition.submission_format)
    client = kaggle_command()
    _run([client, "competitions", "submit", "-c", slug, "-f", str(submission), "-m", message])
    logger.info(f"submit-kaggle: {submission} sent to {slug}; see its leaderboard for the score")


def _check_slug(slug: str | None) -> None:
    # Kaggle's slugs: ASCII letters, digits and dashes, starting with a letter or digit (so never an option).
    if not slug or not slug[0].isalnum() or \
            not all(character.isascii() and (character.isalnum() or character == "-") for character in slug):
        raise PipelineError(f"COMPETITION={slug!r}: give the competition's slug, e.g. digit-recognizer")
