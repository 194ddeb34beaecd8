"""Hostile data folders (issue 13), closed class by class, through the real command line.

Five classes, each with refused cases (exit 2, exactly one line ``error: <file>: <problem>``, no traceback,
no hang, and everything under the test's folder - models/, submissions/, the data folder, the --out folder
and its neighbours - byte-, mtime- and entry-identical afterwards) and accepted cases (they load exactly like
the clean folder they were made from):

1. data loss       ``data --out X`` writes only a missing or empty folder (or finds its own PREPARED.json)
2. special files   a FIFO, device, socket or folder where a file is read; symbolic links to files followed
3. header sizes    .npy/.npz/idx headers and image sizes checked before allocation; each suffix read only as its format
4. silent wrong    one pixel scale for train and test; float labels whole and finite; the sample's header
                   checked as written, not as pandas renamed it
5. small things    hidden files ignored; complete-layout detection; link loops

Every in-process case runs under ``signal.alarm``, so a regression that blocks on a FIFO fails instead of
hanging the suite; the cases that must be seen by a fresh interpreter (Pillow's warnings, a FIFO, a device,
a loop) run ``python -m kaggle_pipeline`` in a subprocess with a timeout. The counts in docs/RELIABILITY.md
come from ``python tests/test_hostile_data.py`` (it prints them).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import socket
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, write_npy_competition
from test_bad_input import SMALL, csv_folder, image_folder, lines, npy_folder, npz_folder, workspace_around, write_lines

from kaggle_pipeline import cli
from kaggle_pipeline.data import MAX_IMAGE_PIXELS, load_competition, read_sample_submission, read_submission_table
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.submit import parse_submission, render_submission, validate_submission

# cli.main installs its Ctrl-C/kill handlers: every test here gives pytest its own back (conftest.py).
pytestmark = pytest.mark.usefixtures("restore_signals")

TIME_LIMIT = 20  # seconds for one in-process case; a FIFO that blocks fails the test instead of hanging it


# Helpers -------------------------------------------------------------------------------------------------
def npy_int_folder(folder: Path) -> Path:
    """An npy folder with integer labels 0..2 and uint8 pixels with a 255 in train and in test."""
    write_npy_competition(folder, **SMALL)
    labels = np.arange(SMALL["count"]) % 3
    np.save(folder / "train_y.npy", labels)
    for name in ("train_x.npy", "test_x.npy"):
        x = np.load(folder / name)
        x[0, 0, 0] = 255
        np.save(folder / name, x)
    return folder


def snapshot(root: Path) -> dict:
    """Every entry under ``root`` (links not followed): kind, and for files content hash and mtime; folders'
    mtimes too (a folder created and removed inside one changes it). Special files are never opened."""
    state = {}
    for folder, subfolders, files in os.walk(root):
        for name in sorted(subfolders + files) + [""]:
            path = os.path.join(folder, name) if name else folder
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    state[path] = ("file", hashlib.sha256(handle.read()).hexdigest(), info.st_mtime_ns)
            elif stat.S_ISDIR(info.st_mode):
                state[path] = ("dir", info.st_mtime_ns)
            elif stat.S_ISLNK(info.st_mode):
                state[path] = ("link", os.readlink(path))
            else:
                state[path] = ("special", stat.S_IFMT(info.st_mode))
    return state


def assert_one_clear_line(stderr: str, named, problem: str) -> None:
    import re

    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    line = stderr.rstrip("\n")
    assert line.startswith(f"error: {named}: "), line
    assert re.search(problem, line), f"{problem!r} not in {line!r}"


@pytest.fixture
def time_limit():
    def expire(signal_number, frame):
        raise TimeoutError(f"no answer within {TIME_LIMIT} s: a read blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TIME_LIMIT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def submit_arguments(folder, models, submissions, *extra):
    return ["submit", "--data", str(folder), "--models-dir", str(models), "--submissions-dir", str(submissions), *extra]


def refused_in_process(tmp_path, capsys, arguments, named, problem) -> None:
    before = snapshot(tmp_path)
    status = cli.main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    assert status == 2, captured
    assert_one_clear_line(captured.err, named, problem)
    assert snapshot(tmp_path) == before


def dataset_refused(make, tmp_path, capsys) -> None:
    """``data --dataset`` on what ``make`` writes into tmp_path/dataset is refused in one line naming what ``make``
    returns with the problem; a name of "--label-column 'x'" is an option given: --label-column x."""
    source = tmp_path / "dataset"
    named, problem = make(source)
    arguments = ["data", "--dataset", source, "--out", tmp_path / "out"]
    if isinstance(named, str) and named.startswith("--label-column"):
        arguments += ["--label-column", named.split("'")[1]]
    refused_in_process(tmp_path, capsys, arguments, named, problem)


def refused_by_a_fresh_process(tmp_path, arguments, named, problem, cwd=None) -> None:
    before = snapshot(tmp_path)
    result = run_cli(*arguments, cwd=cwd or tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert_one_clear_line(result.stderr, named, problem)
    assert snapshot(tmp_path) == before


def assert_loads_like(folder: Path, clean: Path) -> None:
    odd, reference = load_competition(folder), load_competition(clean)
    assert odd.layout == reference.layout
    np.testing.assert_array_equal(odd.x_train, reference.x_train)
    np.testing.assert_array_equal(odd.y_train, reference.y_train)
    np.testing.assert_array_equal(odd.x_test, reference.x_test)
    assert (odd.classes, odd.test_ids, odd.id_column, odd.label_column) == (
        reference.classes, reference.test_ids, reference.id_column, reference.label_column)


def make_fifo(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    os.mkfifo(path)


def replace_with(path: Path, kind: str) -> None:
    """Put something that is not a regular file where ``path`` is."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    elif kind == "urandom":
        path.symlink_to("/dev/urandom")
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to(path.name + ".gone")
    elif kind == "socket":
        here = os.getcwd()
        os.chdir(path.parent)  # a socket's path is limited to 108 bytes; bind the short relative name
        try:
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(path.name)
            server.close()
        finally:
            os.chdir(here)
    else:
        raise ValueError(kind)


# Class 1: data --out never deletes what it did not create ---------------------------------------------------
def write_idx(path: Path, array: np.ndarray, magic: int | None = None, shape=None, compress=True) -> None:
    shape = array.shape if shape is None else shape
    header = struct.pack(">I", 0x0800 | len(shape) if magic is None else magic) + struct.pack(">" + "I" * len(shape), *shape)
    data = header + np.asarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


IDX_NAMES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
             "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}


def idx_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {"x_train": rng.integers(0, 256, (6, 4, 4), dtype=np.uint8), "y_train": np.array([0, 1, 2, 0, 1, 2], np.uint8),
            "x_test": rng.integers(0, 256, (3, 4, 4), dtype=np.uint8), "y_test": np.array([2, 1, 0], np.uint8)}


def idx_source(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for key, name in IDX_NAMES.items():
        write_idx(folder / name, idx_arrays()[key])
    return folder


def user_folder(folder: Path) -> Path:
    """Somebody's folder: files, a subfolder, a hidden file."""
    (folder / "notes").mkdir(parents=True)
    (folder / "thesis.tex").write_text("\\documentclass{article}\n")
    (folder / "notes" / "todo.txt").write_text("back up\n")
    (folder / ".hidden").write_text("x\n")
    return folder


def _out_git_checkout(tmp):
    repo = user_folder(tmp / "repo")
    (repo / ".git").mkdir()
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return repo, repo, None


def _out_only_hidden(tmp):
    folder = tmp / "dotfiles"
    folder.mkdir()
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return folder, folder, None


def _out_empty_subfolder(tmp):
    (tmp / "holder" / "empty").mkdir(parents=True)
    return tmp / "holder", tmp / "holder", None


def _out_foreign_marker(tmp):
    folder = user_folder(tmp / "marked")
    (folder / "PREPARED.json").write_text("{}\n")
    return folder, folder, None


def _out_marker_is_a_fifo(tmp):
    folder = tmp / "fifo-marker"
    folder.mkdir()
    os.mkfifo(folder / "PREPARED.json")
    return folder, folder, None


def _out_link(target_maker):
    def make(tmp):
        target = target_maker(tmp)
        (tmp / "link").symlink_to(target)
        return tmp / "link", tmp / "link", None

    return make


def _out_file(tmp):
    (tmp / "results.csv").write_text("a,b\n1,2\n")
    return tmp / "results.csv", tmp / "results.csv", None


def _out_fifo(tmp):
    os.mkfifo(tmp / "pipe")
    return tmp / "pipe", tmp / "pipe", None


def _out_under_a_file(tmp):
    (tmp / "results.csv").write_text("a,b\n")
    return tmp / "results.csv" / "data", tmp / "results.csv" / "data", None


def _out_dot(tmp):
    user_folder(tmp / "work")
    return Path("."), ".", tmp / "work"


def _out_dot_dot(tmp):
    user_folder(tmp / "work")
    (tmp / "work" / "sub").mkdir()
    return Path(".."), "..", tmp / "work" / "sub"


def _out_home(tmp):
    home = user_folder(tmp / "home")
    os.environ["HOME"] = str(home)  # restored by the test (monkeypatch)
    return Path.home(), Path.home(), None


def _out_inside_checkout(tmp):
    repo, _, _ = _out_git_checkout(tmp)
    return repo / "notes", repo / "notes", None


def _out_relative_prefix(tmp):
    user_folder(tmp / "work")
    return Path("./notes/"), "notes", tmp / "work"


# name: make(tmp) -> (--out, the path named in the message, cwd or None), problem
OUT_REFUSED = {
    "non-empty-folder": (lambda tmp: (user_folder(tmp / "mine"),) * 2 + (None,), "exists and is not empty"),
    "git-checkout": (_out_git_checkout, "exists and is not empty"),
    "inside-a-git-checkout": (_out_inside_checkout, "exists and is not empty"),
    "only-hidden-files": (_out_only_hidden, "exists and is not empty"),
    "holds-an-empty-subfolder": (_out_empty_subfolder, "exists and is not empty"),
    "foreign-PREPARED-json": (_out_foreign_marker, "no PREPARED.json of an earlier 'data' stage"),
    "PREPARED-json-is-a-fifo": (_out_marker_is_a_fifo, "exists and is not empty"),
    "dot": (_out_dot, "exists and is not empty"),
    "dot-dot": (_out_dot_dot, "exists and is not empty"),
    "relative-with-slash": (_out_relative_prefix, "exists and is not empty"),
    "root": (lambda tmp: (Path("/"), "/", None), "exists and is not empty"),
    "home": (_out_home, "exists and is not empty"),
    "a-file": (_out_file, "is a file, not a folder"),
    "a-fifo": (_out_fifo, r"is a special file \(FIFO, device or socket\), not a folder"),
    "dev-null": (lambda tmp: (Path("/dev/null"), "/dev/null", None), "is a special file"),
    "below-a-file": (_out_under_a_file, "cannot use it as the output folder .*Not a directory"),
    "link-to-a-full-folder": (_out_link(lambda tmp: user_folder(tmp / "full")), "exists and is not empty"),
    "dangling-link": (_out_link(lambda tmp: tmp / "nowhere"), "is a symbolic link to nothing"),
    "link-loop": (lambda tmp: ((tmp / "loop").symlink_to("loop"), tmp / "loop", tmp / "loop", None)[1:],
                  "is a symbolic link loop"),
    "link-to-a-file": (_out_link(lambda tmp: (tmp / "f.txt").write_text("x") and tmp / "f.txt"), "is a file"),
}


@pytest.mark.parametrize("case", sorted(OUT_REFUSED))
def test_class1_data_out_refused_and_nothing_touched(case, tmp_path, capsys, monkeypatch, time_limit):
    monkeypatch.setenv("HOME", os.environ.get("HOME", "/root"))
    make, problem = OUT_REFUSED[case]
    source = idx_source(tmp_path / "source")
    out, named, cwd = make(tmp_path)
    if cwd is not None:
        monkeypatch.chdir(cwd)
    refused_in_process(tmp_path, capsys, ["data", "--out", out, "--source", source], named, problem)


def test_class1_data_out_dot_refused_by_a_fresh_process(tmp_path):
    source = idx_source(tmp_path / "source")
    work = user_folder(tmp_path / "work")
    refused_by_a_fresh_process(tmp_path, ["data", "--out", ".", "--source", source], ".", "exists and is not empty",
                               cwd=work)


def test_class1_a_refused_source_leaves_an_empty_out_folder_empty(tmp_path, capsys, time_limit):
    source = idx_source(tmp_path / "source")
    (source / IDX_NAMES["x_train"]).write_bytes(b"not gzip")
    (tmp_path / "empty").mkdir()
    refused_in_process(tmp_path, capsys, ["data", "--out", tmp_path / "empty", "--source", source],
                       source / IDX_NAMES["x_train"], "not a readable gzip")


def test_class1_write_pixel_competition_never_replaces_a_folder(tmp_path):
    from kaggle_pipeline.data import write_pixel_competition

    folder = user_folder(tmp_path / "mine")
    before = snapshot(tmp_path)
    arrays = idx_arrays()
    with pytest.raises(PipelineError, match="exists and is not empty"):
        write_pixel_competition(folder, arrays["x_train"], arrays["y_train"], arrays["x_test"])
    assert snapshot(tmp_path) == before


def _expect_prepared(out: Path) -> None:
    competition = load_competition(out)
    arrays = idx_arrays()
    np.testing.assert_array_equal(competition.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(competition.x_test[..., 0], arrays["x_test"])
    assert competition.classes == ["0", "1", "2"]
    assert (out / "PREPARED.json").is_file()


def test_class1_accepted_missing_folder_created_with_its_parents(tmp_path, capsys):
    source = idx_source(tmp_path / "source")
    out = tmp_path / "a" / "b" / "fashion"
    assert cli.main(["data", "--out", str(out), "--source", str(source)]) == 0
    _expect_prepared(out)
    assert sorted(path.name for path in (tmp_path / "a" / "b").iterdir()) == ["fashion"]  # no staging left


def test_class1_accepted_empty_folder_filled_in_place(tmp_path, capsys):
    source = idx_source(tmp_path / "source")
    out = tmp_path / "empty"
    out.mkdir(mode=0o750)
    inode = out.stat().st_ino
    assert cli.main(["data", "--out", str(out), "--source", str(source)]) == 0
    _expect_prepared(out)
    assert out.stat().st_ino == inode and stat.S_IMODE(out.stat().st_mode) == 0o750
    assert not [path for path in out.iterdir() if path.name.startswith(".")]


def test_class1_accepted_link_to_an_empty_folder_filled_through_the_link(tmp_path, capsys):
    source = idx_source(tmp_path / "source")
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to("target")
    assert cli.main(["data", "--out", str(tmp_path / "link"), "--source", str(source)]) == 0
    assert (tmp_path / "link").is_symlink()
    _expect_prepared(tmp_path / "target")


def test_class1_accepted_empty_current_folder(tmp_path, capsys, monkeypatch):
    source = idx_source(tmp_path / "source")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert cli.main(["data", "--out", ".", "--source", str(source)]) == 0
    _expect_prepared(tmp_path / "here")


def test_class1_accepted_already_prepared_is_left_alone(tmp_path, capsys):
    source = idx_source(tmp_path / "source")
    out = tmp_path / "fashion"
    assert cli.main(["data", "--out", str(out), "--source", str(source)]) == 0
    before = snapshot(tmp_path)
    assert cli.main(["data", "--out", str(out), "--source", str(source)]) == 0
    assert "already prepared" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


CLASS1_ACCEPTED = ["missing-folder", "empty-folder", "link-to-empty-folder", "empty-current-folder", "already-prepared"]


# Class 2: special files where a file is read -----------------------------------------------------------------
KIND_PROBLEM = {
    "fifo": r"is a FIFO \(named pipe\), not a regular file",
    "folder": "is a folder, not a regular file",
    "zero": "is a character device, not a regular file",
    "urandom": "is a character device, not a regular file",
    "socket": r"cannot read \(No such device or address\)|is a socket",  # opening a socket fails with ENXIO
    "loop": "symbolic link loop",
    "dangling": "file not found",
}


def _special(make, relative, kind):
    return (make, lambda folder: replace_with(folder / relative, kind), relative, KIND_PROBLEM[kind])


SPECIAL_REFUSED = {
    "csv-train-fifo": _special(csv_folder, "train.csv", "fifo"),
    "csv-test-fifo": _special(csv_folder, "test.csv", "fifo"),
    "csv-sample-fifo": _special(csv_folder, "sample_submission.csv", "fifo"),
    "csv-sample-folder": _special(csv_folder, "sample_submission.csv", "folder"),
    "csv-solution-fifo": _special(csv_folder, "solution.csv", "fifo"),
    "csv-solution-folder": _special(csv_folder, "solution.csv", "folder"),
    "csv-solution-dev-zero": _special(csv_folder, "solution.csv", "zero"),
    "csv-train-dev-zero": _special(csv_folder, "train.csv", "zero"),
    "csv-test-dev-urandom": _special(csv_folder, "test.csv", "urandom"),
    "csv-test-socket": _special(csv_folder, "test.csv", "socket"),
    "csv-train-link-loop": _special(csv_folder, "train.csv", "loop"),
    "csv-test-dangling-link": _special(csv_folder, "test.csv", "dangling"),
    "images-labels-fifo": _special(image_folder, "trainLabels.csv", "fifo"),
    "images-labels-folder": _special(image_folder, "trainLabels.csv", "folder"),
    "images-train-image-fifo": _special(image_folder, "train/3.png", "fifo"),
    "images-test-image-folder": _special(image_folder, "test/26.png", "folder"),
    "images-test-image-dev-zero": _special(image_folder, "test/27.png", "zero"),
    "images-train-image-link-loop": _special(image_folder, "train/4.png", "loop"),
    "images-sample-fifo": _special(image_folder, "sampleSubmission.csv", "fifo"),
    "npy-train-x-fifo": _special(npy_folder, "train_x.npy", "fifo"),
    "npy-train-y-dev-zero": _special(npy_folder, "train_y.npy", "zero"),
    "npy-test-x-folder": _special(npy_folder, "test_x.npy", "folder"),
    "npz-fifo": _special(npz_folder, "arrays.npz", "fifo"),
    "npz-dev-urandom": _special(npz_folder, "arrays.npz", "urandom"),
}


def _refused_submit(cases, case, tmp_path, capsys):
    make, corrupt, relative, problem = cases[case]
    folder = make(tmp_path / "bad")
    corrupt(folder)
    models, submissions = workspace_around(tmp_path)
    named = folder / relative if relative != "." else folder
    refused_in_process(tmp_path, capsys, submit_arguments(folder, models, submissions), named, problem)


@pytest.mark.parametrize("case", sorted(SPECIAL_REFUSED))
def test_class2_special_files_refused(case, tmp_path, capsys, time_limit):
    _refused_submit(SPECIAL_REFUSED, case, tmp_path, capsys)


IDX_SPECIAL = {"fifo": "fifo", "folder": "folder", "dev-zero": "zero", "link-loop": "loop"}


@pytest.mark.parametrize("kind", sorted(IDX_SPECIAL))
def test_class2_special_idx_files_refused(kind, tmp_path, capsys, time_limit):
    source = idx_source(tmp_path / "source")
    replace_with(source / IDX_NAMES["y_test"], IDX_SPECIAL[kind])
    refused_in_process(tmp_path, capsys, ["data", "--out", tmp_path / "new", "--source", source],
                       source / IDX_NAMES["y_test"], KIND_PROBLEM[IDX_SPECIAL[kind]])


@pytest.mark.parametrize("relative,kind", [("train.csv", "fifo"), ("test.csv", "zero")])
def test_class2_special_files_refused_by_a_fresh_process(relative, kind, tmp_path):
    folder = csv_folder(tmp_path / "bad")
    replace_with(folder / relative, kind)
    models, submissions = workspace_around(tmp_path)
    refused_by_a_fresh_process(tmp_path, submit_arguments(folder, models, submissions), folder / relative,
                               KIND_PROBLEM[kind])


def _link_everything(make):
    """The same folder, every data file a symbolic link to a regular file elsewhere."""
    def convert(folder):
        store = folder.parent / (folder.name + "-real")
        shutil.copytree(folder, store)
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                path.unlink()
                path.symlink_to(store / path.relative_to(folder))
    return make, convert


def _link_folders(folder):
    for name in ("train", "test"):
        shutil.move(folder / name, folder.parent / f"{name}-elsewhere")
        (folder / name).symlink_to(folder.parent / f"{name}-elsewhere")


SPECIAL_ACCEPTED = {
    "csv-files-are-links": _link_everything(csv_folder),
    "images-files-are-links": _link_everything(image_folder),
    "images-folders-are-links": (image_folder, _link_folders),
    "npy-files-are-links": _link_everything(npy_folder),
    "npz-is-a-link": _link_everything(npz_folder),
}


def _accepted(cases, case, tmp_path):
    make, convert = cases[case]
    clean = make(tmp_path / "clean")
    folder = make(tmp_path / "odd")
    convert(folder)
    assert_loads_like(folder, clean)


@pytest.mark.parametrize("case", sorted(SPECIAL_ACCEPTED))
def test_class2_links_to_regular_files_are_followed(case, tmp_path, time_limit):
    _accepted(SPECIAL_ACCEPTED, case, tmp_path)


# Class 3: sizes from untrusted headers ----------------------------------------------------------------------
def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` grey pixels and holds one tiny IDAT: a bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_declaring(path: Path, width: int, height: int) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))


def _save_as(relative, image_format, mode="RGB"):
    def corrupt(folder):
        from PIL import Image

        Image.new(mode, (4, 4)).save(folder / relative, format=image_format)

    return corrupt


def _npy_bytes(shape, dtype, data) -> bytes:
    """An .npy file whose header declares ``shape`` whatever ``data`` holds."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def _npz_member_declaring(shape):
    def corrupt(folder):
        import zipfile

        path = folder / "arrays.npz"
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("extra.npy", _npy_bytes(shape, "<u1", b"\0" * 16))

    return corrupt


HUGE = (10**6, 10**6, 10**6)
HEADER_REFUSED = {
    "png-40000x40000": (image_folder, lambda f: (f / "train" / "3.png").write_bytes(png_header_only(40000, 40000)),
                        "train/3.png", "declares 1,600,000,000 pixels, more than the"),
    "png-9500x9500": (image_folder, lambda f: (f / "test" / "26.png").write_bytes(png_header_only(9500, 9500)),
                      "test/26.png", "declares 9500x9500 pixels, more than the"),
    "png-1x100000000": (image_folder, lambda f: (f / "train" / "5.png").write_bytes(png_header_only(1, 100_000_000)),
                       "train/5.png", "declares 1x100000000 pixels"),
    "jpeg-65000x65000": (image_folder, lambda f: jpeg_declaring(f / "train" / "6.jpg", 65000, 65000) or (f / "train" / "6.png").unlink(),
                         "train/6.jpg", "declares 4,225,000,000 pixels"),
    "png-declaring-5000x5000-holding-nothing": (image_folder, lambda f: (f / "train" / "7.png").write_bytes(
        png_header_only(5000, 5000)), "train/7.png", "cannot read image"),
    "eps-named-png": (image_folder, lambda f: (f / "train" / "2.png").write_text(
        "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\nshowpage\n"), "train/2.png", "not a PNG or JPEG file"),
    "gif-named-png": (image_folder, _save_as("train/8.png", "GIF", "P"), "train/8.png", "not a PNG or JPEG file"),
    "bmp-named-jpg": (image_folder, lambda f: (_save_as("test/25.jpg", "BMP")(f), (f / "test" / "25.png").unlink()),
                      "test/25.jpg", "not a PNG or JPEG file"),
    "tiff-named-png": (image_folder, _save_as("test/28.png", "TIFF"), "test/28.png", "not a PNG or JPEG file"),
    "npy-huge-shape": (npy_folder, lambda f: (f / "train_x.npy").write_bytes(_npy_bytes(HUGE, "<u1", b"\0" * 16)),
                       "train_x.npy", r"cannot load array \(the header declares shape"),
    "npy-shape-larger-than-file": (npy_folder, lambda f: (f / "test_x.npy").write_bytes(
        _npy_bytes((6, 40, 40), "<u1", b"\0" * 96)), "test_x.npy", "file holds 96 bytes"),
    "npy-negative-shape": (npy_folder, lambda f: (f / "train_x.npy").write_bytes(_npy_bytes((-24, 4), "<u1", b"")),
                           "train_x.npy", "negative shape|cannot load array"),
    "npy-huge-labels": (npy_folder, lambda f: (f / "train_y.npy").write_bytes(_npy_bytes((2**40,), "<U20", b"")),
                        "train_y.npy", "cannot load array"),
    "npz-member-huge-shape": (npz_folder, _npz_member_declaring(HUGE), "arrays.npz", r"cannot load array \(member extra.npy: the header declares shape"),
}


@pytest.mark.parametrize("case", sorted(HEADER_REFUSED))
def test_class3_declared_sizes_checked_before_allocation(case, tmp_path, capsys, time_limit):
    _refused_submit(HEADER_REFUSED, case, tmp_path, capsys)


@pytest.mark.parametrize("width,height", [(40000, 40000), (10000, 10000)])
def test_class3_image_bombs_one_line_and_no_pillow_warning(width, height, tmp_path):
    folder = image_folder(tmp_path / "bad")
    (folder / "train" / "3.png").write_bytes(png_header_only(width, height))
    models, submissions = workspace_around(tmp_path)
    refused_by_a_fresh_process(tmp_path, submit_arguments(folder, models, submissions), folder / "train" / "3.png",
                               f"declares .*pixels, more than the {MAX_IMAGE_PIXELS:,}")


def test_class3_images_too_many_for_the_memory_at_the_asked_size_are_refused_before_decoding(tmp_path, capsys,
                                                                                               time_limit):
    """The decoded arrays' size (count x SIZE^2 x channels) is checked against MAX_ARRAY_BYTES after the header pass,
    before anything is allocated: SIZE=512 on a large photo competition would otherwise fill the memory and be
    killed. Here tiny PNGs, just enough of them to need more than the limit at 1024 a side."""
    from kaggle_pipeline.files import MAX_ARRAY_BYTES

    folder = image_folder(tmp_path / "bad")
    extra = MAX_ARRAY_BYTES // (1024 * 1024 * 3) + 1
    pixel = (folder / "train" / "1.png").read_bytes()
    for number in range(1000, 1000 + extra):
        (folder / "train" / f"{number}.png").write_bytes(pixel)
    with open(folder / "trainLabels.csv", "a") as labels:
        labels.writelines(f"{number},cat\n" for number in range(1000, 1000 + extra))
    models, _ = workspace_around(tmp_path)
    refused_in_process(tmp_path, capsys, ["search", "--data", folder, "--models-dir", models, "--image-size", "1024"],
                       "--image-size 1024 (SIZE=)", rf"\d[\d,]+ images of 1024x1024x3 need \d+\.\d GiB as arrays, "
                       rf"more than the {MAX_ARRAY_BYTES / 2**30:.1f} GiB \(half this machine's memory\)")


def _idx_rewrite(key, **options):
    def corrupt(source):
        write_idx(source / IDX_NAMES[key], options.pop("array", idx_arrays()[key]), **options)

    return corrupt


def _idx_bytes(key, change):
    def corrupt(source):
        path = source / IDX_NAMES[key]
        path.write_bytes(change(path.read_bytes()))

    return corrupt


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF, data[middle + 1] ^ 0x55]) + data[middle + 2:]


IDX_REFUSED = {
    "truncated-gzip": (_idx_bytes("x_train", lambda data: data[: len(data) // 2]), "x_train", "not a readable gzip"),
    "corrupt-gzip": (_idx_bytes("x_train", _flip_middle), "x_train", "not a readable gzip|declares"),
    "crc-mismatch": (_idx_bytes("y_train", lambda data: data[:-8] + bytes(4) + data[-4:]), "y_train",
                     "not a readable gzip"),
    "not-gzip": (_idx_rewrite("x_test", compress=False), "x_test", "not a readable gzip"),
    "empty-file": (_idx_bytes("y_test", lambda data: b""), "y_test", "not an IDX file"),
    "gzip-of-nothing": (_idx_bytes("y_test", lambda data: gzip.compress(b"")), "y_test", "not an IDX file"),
    "more-items-declared": (_idx_rewrite("x_train", shape=(600, 4, 4)), "x_train",
                            r"declares shape \(600, 4, 4\) \(9,600 bytes\) but the file holds 96"),
    "fewer-items-declared": (_idx_rewrite("y_train", shape=(3,)), "y_train", "holds more than that"),
    "huge-declared-shape": (_idx_rewrite("x_train", shape=(2**32 - 1, 2**32 - 1, 2**32 - 1)), "x_train",
                            "more than the .* bytes"),
    "float-idx": (_idx_rewrite("x_train", magic=0x0D03), "x_train", "not an unsigned-byte IDX file"),
    "zero-dimensions": (_idx_rewrite("y_train", magic=0x0800, shape=()), "y_train", "not an unsigned-byte IDX file"),
    "cut-in-the-header": (_idx_bytes("x_test", lambda data: gzip.compress(gzip.decompress(data)[:9])), "x_test",
                          "header is cut short"),
    "labels-count-differs": (_idx_rewrite("y_train", array=np.array([0, 1, 2, 0], np.uint8)), "y_train",
                             "expected 6 labels"),
    "images-not-3d": (_idx_rewrite("x_test", array=np.zeros((3, 16), np.uint8)), "x_test",
                      r"expected images shaped \(N, height, width\)"),
    "test-size-differs": (_idx_rewrite("x_test", array=np.zeros((3, 5, 5), np.uint8)), "x_test", "test images are"),
    "missing-file": (lambda source: (source / IDX_NAMES["y_test"]).unlink(), "y_test", "file not found"),
}


@pytest.mark.parametrize("case", sorted(IDX_REFUSED))
def test_class3_idx_files_checked(case, tmp_path, capsys, time_limit):
    corrupt, key, problem = IDX_REFUSED[case]
    source = idx_source(tmp_path / "source")
    corrupt(source)
    refused_in_process(tmp_path, capsys, ["data", "--out", tmp_path / "new", "--source", source],
                       source / IDX_NAMES[key], problem)


def test_class3_idx_source_not_a_folder(tmp_path, capsys, time_limit):
    (tmp_path / "source").write_text("x\n")
    refused_in_process(tmp_path, capsys, ["data", "--out", tmp_path / "new", "--source", tmp_path / "source"],
                       tmp_path / "source", "not a folder")


def _uppercase_suffixes(folder):
    for path in (folder / "train").glob("*.png"):
        path.rename(path.with_suffix(".PNG"))


HEADER_ACCEPTED = {
    "images-uppercase-PNG-suffix": (image_folder, _uppercase_suffixes),
    "npz-with-a-compressed-archive": (npz_folder, lambda f: np.savez_compressed(
        f / "arrays.npz", **dict(np.load(f / "arrays.npz")))),
}


@pytest.mark.parametrize("case", sorted(HEADER_ACCEPTED))
def test_class3_accepted(case, tmp_path, time_limit):
    _accepted(HEADER_ACCEPTED, case, tmp_path)


# Class 4: silent wrong data ------------------------------------------------------------------------------------
def _npy_set(name, change):
    def corrupt(folder):
        np.save(folder / name, change(np.load(folder / name)))

    return corrupt


def _unit(x):
    return x.astype(np.float32) / 255


def _csv_floats(name, scale=255.0):
    def corrupt(folder):
        header, *rows = lines(folder / name)
        skip = 1 if name == "train.csv" else 0
        out = []
        for row in rows:
            fields = row.split(",")
            out.append(",".join(fields[:skip] + [repr(int(value) / scale) for value in fields[skip:]]))
        write_lines(folder / name, [header] + out)

    return corrupt


def _set_cell(name, row, column, value):
    def corrupt(folder):
        rows = lines(folder / name)
        fields = rows[row].split(",")
        fields[column] = value
        rows[row] = ",".join(fields)
        write_lines(folder / name, rows)

    return corrupt


def _both(*changes):
    return lambda folder: [change(folder) for change in changes]


def _npz_mixed(folder):
    arrays = dict(np.load(folder / "arrays.npz"))
    arrays["train_x"] = _unit(arrays["train_x"])
    np.savez(folder / "arrays.npz", **arrays)


def _sample(header_line):
    def corrupt(folder):
        sample = next(path for path in folder.iterdir() if path.name.lower().startswith("sample"))
        rows = lines(sample)
        write_lines(sample, [header_line] + rows[1:])

    return corrupt


def _sample_prefix(prefix: bytes):
    def corrupt(folder):
        path = folder / "sample_submission.csv"
        path.write_bytes(prefix + path.read_bytes())

    return corrupt


def _sample_without_header(folder):
    path = folder / "sample_submission.csv"
    write_lines(path, lines(path)[1:])


SILENT_REFUSED = {
    # (a) one scale for train and test
    "npy-floats-up-to-1.4": (npy_folder, _both(_npy_set("train_x.npy", lambda x: _unit(x) * 1.7),
                                               _npy_set("test_x.npy", _unit)), "train_x.npy", r"floats reaching 1\.39\d*: above 0..1"),
    "npy-float-train-unit-test-uint8": (npy_folder, _npy_set("train_x.npy", _unit), "train_x.npy",
                                        "train_x pixel values lie within 0..1 .* while test_x .* reaches 2"),
    "npy-float-test-unit-train-uint8": (npy_folder, _npy_set("test_x.npy", _unit), "test_x.npy",
                                        "test_x pixel values lie within 0..1 .* while train_x"),
    "npy-int-train-binary-test-0-255": (npy_folder, _npy_set("train_x.npy", lambda x: (x > 100).astype(np.int64)),
                                        "train_x.npy", "must use one scale"),
    "npy-float-0-255-train-unit-test": (npy_folder, _both(_npy_set("train_x.npy", lambda x: x.astype(np.float64)),
                                                          _npy_set("test_x.npy", _unit)), "test_x.npy",
                                        "must use one scale"),
    "npz-float-train-unit-test-uint8": (npz_folder, _npz_mixed, "arrays.npz", "train_x pixel values lie within 0..1"),
    "npy-floats-up-to-10": (npy_folder, _both(_npy_set("train_x.npy", lambda x: _unit(x) * 10),
                                              _npy_set("test_x.npy", lambda x: _unit(x) * 10)), "train_x.npy",
                            "too dark for 0..255"),
    "npy-inf-pixel": (npy_folder, _npy_set("test_x.npy", lambda x: np.where(x == x.max(), np.inf, _unit(x))),
                      "test_x.npy", "value inf in image .* is not a finite number"),
    "npy-minus-inf-pixel": (npy_folder, _npy_set("train_x.npy", lambda x: np.where(x == x.max(), -np.inf, x * 1.0)),
                            "train_x.npy", "value -inf in image .* is not a finite number"),
    "npy-negative-float": (npy_folder, _npy_set("train_x.npy", lambda x: _unit(x) - 0.5), "train_x.npy",
                           "value -0.5 is outside 0..255"),
    "csv-float-train-unit-int-test": (csv_folder, _csv_floats("train.csv"), "train.csv",
                                      "train.csv pixel values lie within 0..1 .* while test.csv"),
    "csv-int-train-float-unit-test": (csv_folder, _csv_floats("test.csv"), "test.csv", "must use one scale"),
    "csv-floats-up-to-5": (csv_folder, _both(_csv_floats("train.csv", 51.0), _csv_floats("test.csv", 51.0)),
                           "train.csv", r"floats reaching 4\.09\d*: above 0..1"),
    "csv-inf-pixel": (csv_folder, _set_cell("test.csv", 3, 2, "inf"), "test.csv", "value inf .* not a finite number"),
    "csv-boolean-pixels": (csv_folder, lambda f: write_lines(f / "test.csv", [lines(f / "test.csv")[0]] + [
        ",".join(["True"] * 16)] * 6), "test.csv", "non-numeric pixel value 'True'"),
    # (b) labels
    "npy-inf-label": (npy_int_folder, _npy_set("train_y.npy", lambda y: np.where(y == 2, np.inf, y)), "train_y.npy",
                      "label inf .* is not a whole number within int64"),
    "npy-nan-label": (npy_int_folder, _npy_set("train_y.npy", lambda y: np.where(y == 2, np.nan, y)), "train_y.npy",
                      "label nan .* is not a whole number"),
    "npy-minus-inf-label": (npy_int_folder, _npy_set("train_y.npy", lambda y: np.where(y == 0, -np.inf, y)),
                            "train_y.npy", "label -inf"),
    "npy-label-beyond-int64": (npy_int_folder, _npy_set("train_y.npy", lambda y: np.where(y == 1, 1e30, y)),
                               "train_y.npy", "label 1e\\+30 .* not a whole number within int64"),
    "npy-label-2-pow-63": (npy_int_folder, _npy_set("train_y.npy", lambda y: np.where(y == 1, 2.0**63, y)),
                           "train_y.npy", "not a whole number within int64"),
    "npy-float32-half-label": (npy_int_folder, _npy_set("train_y.npy", lambda y: (y + 0.5).astype(np.float32)),
                               "train_y.npy", "label 0.5"),
    "npy-bool-labels": (npy_int_folder, _npy_set("train_y.npy", lambda y: y == 1), "train_y.npy",
                        "labels must be integers or strings, found dtype bool"),
    "npy-complex-labels": (npy_int_folder, _npy_set("train_y.npy", lambda y: y + 0j), "train_y.npy",
                           "found dtype complex128"),
    "npy-bytes-labels": (npy_folder, _npy_set("train_y.npy", lambda y: y.astype("S")), "train_y.npy",
                         "found dtype \\|S4"),
    "npy-blank-label": (npy_folder, _npy_set("train_y.npy", lambda y: np.where(np.arange(len(y)) == 4, "   ", y)),
                        "train_y.npy", r"training image 4 has an empty label \(1 such\)"),
    "npy-labels-2d": (npy_int_folder, _npy_set("train_y.npy", lambda y: y[:, None]), "train_y.npy",
                      "in one dimension"),
    # (c) the sample submission's header as written
    "sample-empty-label-name": (csv_folder, _sample("ImageId,"), "sample_submission.csv", "column 2 of the header has no name"),
    "sample-empty-id-name": (csv_folder, _sample(",Label"), "sample_submission.csv", "column 1 of the header has no name"),
    "sample-blank-name": (csv_folder, _sample("ImageId,   "), "sample_submission.csv", "has no name"),
    "sample-trailing-separator": (csv_folder, _sample("ImageId,Label,"), "sample_submission.csv", "column 3 .* no name"),
    "sample-semicolon-empty-name": (csv_folder, lambda f: write_lines(f / "sample_submission.csv", ["ImageId;"] + [
        row.replace(",", ";") for row in lines(f / "sample_submission.csv")[1:]]), "sample_submission.csv", "no name"),
    "sample-bom-empty-name": (csv_folder, _both(_sample("ImageId,"), _sample_prefix(b"\xef\xbb\xbf")),
                              "sample_submission.csv", "column 2 of the header has no name"),
    "sample-blank-first-line": (csv_folder, _sample_prefix(b"\n"), "sample_submission.csv", "the first line is blank"),
    "sample-whitespace-first-line": (csv_folder, _sample_prefix(b"   \n"), "sample_submission.csv",
                                     "the first line is blank"),
    "sample-without-header": (csv_folder, _sample_without_header, "sample_submission.csv",
                              "looks like a row of data, not a header"),
    "sample-numeric-header": (image_folder, _sample("0,1.5"), "sampleSubmission.csv", "looks like a row of data"),
    "sample-empty-name-npy": (npy_folder, _sample("Id,"), "sample_submission.csv", "has no name"),
}


@pytest.mark.parametrize("case", sorted(SILENT_REFUSED))
def test_class4_silent_wrong_data_refused(case, tmp_path, capsys, time_limit):
    _refused_submit(SILENT_REFUSED, case, tmp_path, capsys)


def test_class4_validate_compares_the_sample_header_as_written(tmp_path):
    sample_path = tmp_path / "sample.csv"
    sample_path.write_text("ImageId,\n1,0\n2,0\n")
    sample = read_submission_table(sample_path)  # the table reader keeps it; the loader refuses it
    assert list(sample.columns) == ["ImageId", "Unnamed: 1"]
    rendered = parse_submission("ImageId,Unnamed: 1\n1,0\n2,1\n")
    with pytest.raises(PipelineError, match=r"header \['ImageId', 'Unnamed: 1'\] differs .* \['ImageId', ''\]"):
        validate_submission(rendered, sample, ["0", "1"], "submission")


def _tiny_above_one(folder):
    for name in ("train_x.npy", "test_x.npy"):
        x = _unit(np.load(folder / name))
        np.save(folder / name, x)
    x = np.load(folder / "train_x.npy")
    x[x == x.max()] = np.float32(1.0000001)
    np.save(folder / "train_x.npy", x)


def _tiny_below_zero(folder):
    for name in ("train_x.npy", "test_x.npy"):
        x = _unit(np.load(folder / name)).astype(np.float64)
        x[x == 0] = -1e-9
        np.save(folder / name, x)


def _sample_header_as(header):
    def corrupt(folder):
        rows = lines(folder / "sample_submission.csv")
        write_lines(folder / "sample_submission.csv", [header] + rows[1:])
        train = lines(folder / "train.csv")
        write_lines(folder / "train.csv", ["label" + train[0][len(train[0].split(",")[0]):]] + train[1:])

    return corrupt


SILENT_ACCEPTED = {
    "npy-unit-floats-in-train-and-test": (npy_int_folder, _both(_npy_set("train_x.npy", _unit), _npy_set("test_x.npy", _unit))),
    "npy-unit-floats-a-hair-above-1": (npy_int_folder, _tiny_above_one),
    "npy-unit-floats-a-hair-below-0": (npy_int_folder, _tiny_below_zero),
    "npy-float-0-255": (npy_int_folder, _both(_npy_set("train_x.npy", lambda x: x.astype(np.float64)),
                                              _npy_set("test_x.npy", lambda x: x.astype(np.float32)))),
    "npy-int64-train-uint8-test": (npy_int_folder, _npy_set("train_x.npy", lambda x: x.astype(np.int64))),
    "csv-unit-floats-in-train-and-test": (csv_folder, _both(_csv_floats("train.csv"), _csv_floats("test.csv"))),
    "npy-whole-float-labels": (npy_int_folder, _npy_set("train_y.npy", lambda y: y.astype(np.float64))),
    "npy-int32-labels": (npy_int_folder, _npy_set("train_y.npy", lambda y: y.astype(np.int32))),
}


@pytest.mark.parametrize("case", sorted(SILENT_ACCEPTED))
def test_class4_accepted_loads_like_the_clean_folder(case, tmp_path, time_limit):
    _accepted(SILENT_ACCEPTED, case, tmp_path)


@pytest.mark.parametrize("header", ["Image Id,Predicted Label", "ImageId,Unnamed: 1", '"Image,Id",Label', " ImageId ,Label"])
def test_class4_unusual_sample_headers_render_exactly(header, tmp_path):
    folder = csv_folder(tmp_path / "odd")
    _sample(header)(folder)
    competition = load_competition(folder)
    sample = read_sample_submission(competition.sample_submission)
    text = render_submission(competition, np.arange(len(competition.x_test)) % 3)
    assert text.splitlines()[0] == header
    validate_submission(parse_submission(text), sample, competition.classes, "rendered")


# Class 5: what real folders contain ---------------------------------------------------------------------------
def _resource_forks(folder):
    for sub in ("train", "test"):
        for path in sorted((folder / sub).iterdir())[:2]:
            (folder / sub / f"._{path.name}").write_bytes(b"\0\5\26\7\0\2\0\0Mac OS X        ")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "train" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")


def _hidden_everywhere(folder):
    for name in ("._train.csv", "._sample_submission.csv", "._arrays.npz", "._train_x.npy", ".DS_Store"):
        (folder / name).write_bytes(b"\0\5\26\7 resource fork")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "train-checkpoint.csv").write_text("garbage\n")


def _empty_folders(*names):
    return lambda folder: [(folder / name).mkdir() for name in names]


def _train_folder_with_only_hidden(folder):
    (folder / "train").mkdir()
    (folder / "train" / ".DS_Store").write_bytes(b"\0")
    (folder / "train" / "._1.png").write_bytes(b"\0")


SMALL_ACCEPTED = {
    "images-resource-forks-and-DS_Store": (image_folder, _resource_forks),
    "csv-hidden-files-everywhere": (csv_folder, _hidden_everywhere),
    "npy-hidden-files-everywhere": (npy_folder, _hidden_everywhere),
    "npz-hidden-files-everywhere": (npz_folder, _hidden_everywhere),
    "csv-with-an-empty-train-folder": (csv_folder, _empty_folders("train")),
    "csv-with-empty-train-and-test-folders": (csv_folder, _empty_folders("train", "test")),
    "csv-with-a-train-folder-of-hidden-files": (csv_folder, _train_folder_with_only_hidden),
    "csv-with-a-labels-csv-and-empty-train": (csv_folder, lambda f: (_empty_folders("train")(f),
                                                                    (f / "trainLabels.csv").write_text("id,label\n"))),
}


@pytest.mark.parametrize("case", sorted(SMALL_ACCEPTED))
def test_class5_accepted_loads_like_the_clean_folder(case, tmp_path, time_limit):
    _accepted(SMALL_ACCEPTED, case, tmp_path)


def test_class5_data_folder_through_a_link_is_read(tmp_path, time_limit):
    clean = csv_folder(tmp_path / "clean")
    (tmp_path / "link").symlink_to(clean)
    assert_loads_like(tmp_path / "link", clean)


def _data_is(kind):
    def make(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        replace_with(folder, kind)
        return folder

    return make


SMALL_REFUSED = {
    "data-folder-link-loop": (_data_is("loop"), lambda f: None, ".", "symbolic link loop"),
    "data-folder-dangling-link": (_data_is("dangling"), lambda f: None, ".", "competition folder not found"),
    "data-folder-is-a-file": (lambda f: (f.parent.mkdir(parents=True, exist_ok=True), f.write_text("x"), f)[2],
                              lambda f: None, ".", "not a folder"),
    "data-folder-is-a-fifo": (_data_is("fifo"), lambda f: None, ".", "not a folder"),
    "images-train-folder-link-loop": (image_folder, lambda f: replace_with(f / "train", "loop"), "train",
                                      "symbolic link loop"),
    "images-test-folder-is-a-file": (image_folder, lambda f: (shutil.rmtree(f / "test"), (f / "test").write_text("x")),
                                     "test", "not a folder; expected the image folder"),
    "csv-only-a-resource-fork-of-train": (csv_folder, lambda f: (f / "train.csv").rename(f / "._train.csv"),
                                          "train.csv", "file not found"),
}


@pytest.mark.parametrize("case", sorted(SMALL_REFUSED))
def test_class5_refused(case, tmp_path, capsys, time_limit):
    _refused_submit(SMALL_REFUSED, case, tmp_path, capsys)


def test_class5_link_loop_refused_by_a_fresh_process(tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    models, submissions = workspace_around(tmp_path)
    # No --name: the store's name comes from the folder itself, which must not raise on a loop either.
    refused_by_a_fresh_process(tmp_path, submit_arguments(tmp_path / "loop", models, submissions),
                               tmp_path / "loop", "symbolic link loop")


# Counts for docs/RELIABILITY.md --------------------------------------------------------------------------------
COUNTS = {
    "1 data loss": {"refused": len(OUT_REFUSED) + 3, "accepted": len(CLASS1_ACCEPTED)},
    "2 special files": {"refused": len(SPECIAL_REFUSED) + len(IDX_SPECIAL) + 2, "accepted": len(SPECIAL_ACCEPTED)},
    "3 header sizes": {"refused": len(HEADER_REFUSED) + 3 + len(IDX_REFUSED) + 1, "accepted": len(HEADER_ACCEPTED)},
    "4 silent wrong data": {"refused": len(SILENT_REFUSED) + 1, "accepted": len(SILENT_ACCEPTED) + 4},
    "5 small things": {"refused": len(SMALL_REFUSED) + 1, "accepted": len(SMALL_ACCEPTED) + 1},
}


def test_every_class_has_cases_beyond_the_named_examples():
    for name, count in COUNTS.items():
        assert count["refused"] >= 7 and count["accepted"] >= 2, (name, count)


if __name__ == "__main__":
    for name, count in COUNTS.items():
        print(f"{name}: {count['refused']} refused, {count['accepted']} accepted")
    print("total:", sum(c["refused"] for c in COUNTS.values()), "refused,", sum(c["accepted"] for c in COUNTS.values()), "accepted")
