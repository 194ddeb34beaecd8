"""Reading files nobody vouches for: only regular files, and no allocation larger than the file can back.

A competition folder and a run store are both edited by hand, copied between machines and damaged by full
disks, so every reader here assumes the worst:

- only regular files are read: a FIFO in place of ``train.csv`` would block forever and ``/dev/zero`` would
  never end, so anything else is refused in one line before it is opened for reading (``O_NONBLOCK`` makes
  even the open of a FIFO return at once);
- a file inside the run store is never followed through a symbolic link (``follow_links=False``): the
  pipeline reads and writes its own files there, not whatever a link points to;
- an array's size comes from its header, which anyone can write: a ``.npy`` whose header declares more
  bytes than the file holds (or than ``MAX_ARRAY_BYTES``) is refused before anything is allocated, and so is
  an ``.npz`` member whose header disagrees with the archive's own record of its size.

Every problem is a ``PipelineError`` naming the file: the command line prints it as one line and exits 2.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from kaggle_pipeline.errors import PipelineError


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


# No single array (nor the members of one .npz together) may claim more than half of this machine's memory.
MAX_ARRAY_BYTES = _physical_memory() // 2


def first_line(error: BaseException) -> str:
    """An exception as one line: its message's first line, or its type's name when it has no message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


# What a competition downloaded by hand arrives in: a missing train.csv or train/ is often still packed beside it.
ARCHIVE_SUFFIXES = (".zip", ".7z", ".rar", ".tar", ".tgz", ".gz", ".bz2", ".xz")


def archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def packed_hint(folder: Path, starting: str = "") -> str:
    """``"; it holds train.zip: unpack it here first ..."`` where ``folder`` holds archives whose names start with
    ``starting`` (any case), else ``""``. With ``starting`` (a missing ``train.csv`` or ``train/`` gives ``train``,
    so ``train.zip``, ``train.csv.zip`` and ``train_images.zip`` are named) it reads ``"; train.zip is beside it:
    ..."``."""
    try:
        names = sorted(name for name in os.listdir(folder) if archive_name(name) and not name.startswith(".")
                       and name.lower().startswith(starting.lower()) and os.path.isfile(os.path.join(folder, name)))
    except (OSError, ValueError):
        return ""
    if not names:
        return ""
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    them = "it" if len(names) == 1 else "them"
    where = f"it holds {shown}" if not starting else f"{shown} {'is' if len(names) == 1 else 'are'} beside it"
    return f"; {where}: unpack {them} here first (make download unpacks what it downloads)"


def missing_hint(path: Path) -> str:
    """``packed_hint`` for a missing file or folder: the archives beside it named like it (``train`` for
    ``train.csv`` or ``train/``)."""
    path = Path(path)
    return packed_hint(path.parent, path.name.split(".")[0] or path.name)


def _open_error(path: Path, error: OSError, follow_links: bool) -> PipelineError:
    if isinstance(error, FileNotFoundError):
        return PipelineError(f"{path}: file not found" + (missing_hint(path) if follow_links else ""))
    if error.errno == errno.ELOOP:
        if not follow_links:
            return PipelineError(f"{path}: is a symbolic link; files inside the run store are never followed "
                                 "through links (replace it with the file itself)")
        return PipelineError(f"{path}: symbolic link loop")
    try:
        mode = os.stat(path).st_mode  # a socket cannot even be opened (ENXIO): say what it is
        if not stat.S_ISREG(mode):
            return PipelineError(f"{path}: is {_kind(mode)}, not a regular file; only regular files are read")
    except OSError:
        pass
    return PipelineError(f"{path}: cannot read ({error.strerror or first_line(error)})")


def open_regular(path: Path, follow_links: bool = True):
    """``path`` opened for binary reading, after checking that it is a regular file."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise _open_error(path, error, follow_links) from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise PipelineError(f"{path}: is {_kind(mode)}, not a regular file; only regular files are read")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def regular_file(path: Path, follow_links: bool = True) -> os.stat_result:
    """Check (without reading) that ``path`` is a regular file; return its status."""
    with open_regular(path, follow_links) as handle:
        return os.fstat(handle.fileno())


def read_bytes(path: Path, follow_links: bool = True, limit: int | None = None) -> bytes:
    with open_regular(path, follow_links) as handle:
        size = os.fstat(handle.fileno()).st_size
        if limit is not None and size > limit:
            raise PipelineError(f"{path}: {size:,} bytes, more than the {limit:,} this file may have")
        try:
            return handle.read()
        except OSError as error:
            raise PipelineError(f"{path}: cannot read ({error.strerror or first_line(error)})") from None


def _array_header(handle, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and byte count an ``.npy`` header declares (the stream is left after the header)."""
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            shape, _, dtype = np.lib.format._read_array_header(handle, version)  # 3.0: no public reader
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{where}: not a readable .npy array ({first_line(error)})") from None
    if dtype.hasobject:
        raise PipelineError(f"{where}: holds Python objects (dtype {dtype}); only plain numeric or text arrays are read")
    if any(side < 0 for side in shape):
        raise PipelineError(f"{where}: the header declares a negative shape {shape}")
    return tuple(shape), dtype, math.prod(shape) * dtype.itemsize


def _check_declared_size(where: str, shape, declared: int, available: int) -> None:
    if declared > MAX_ARRAY_BYTES:
        raise PipelineError(f"{where}: the header declares shape {shape} ({declared:,} bytes), more than the "
                            f"{MAX_ARRAY_BYTES:,} bytes (half this machine's memory) an array may have")
    if declared != available:
        raise PipelineError(f"{where}: the header declares shape {shape} ({declared:,} bytes) but the file holds "
                            f"{available:,} bytes of data; the file is damaged or cut short")


def _read_checked_array(handle, where: str) -> np.ndarray:
    try:
        return np.lib.format.read_array(handle, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{where}: cannot load array ({first_line(error)})") from None


def load_array(path: Path, follow_links: bool = True) -> np.ndarray:
    """A ``.npy`` file, its header checked against the file's real size before anything is allocated."""
    with open_regular(path, follow_links) as handle:
        size = os.fstat(handle.fileno()).st_size
        shape, _, declared = _array_header(handle, str(path))
        _check_declared_size(str(path), shape, declared, size - handle.tell())
        handle.seek(0)
        return _read_checked_array(handle, str(path))


def load_arrays(path: Path, follow_links: bool = True) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive, by name; each member's header is checked against the archive's
    record of its size, and their total against ``MAX_ARRAY_BYTES``, before anything is allocated."""
    with open_regular(path, follow_links) as handle:
        try:
            with zipfile.ZipFile(handle) as archive:
                members = [info for info in archive.infolist() if not info.is_dir()]
                total = 0
                for info in members:
                    where = f"{path} (member {info.filename})"
                    if not info.filename.endswith(".npy"):
                        raise PipelineError(f"{where}: not a .npy array")
                    with archive.open(info) as member:
                        shape, _, declared = _array_header(member, where)
                        _check_declared_size(where, shape, declared, info.file_size - member.tell())
                    total += declared
                if total > MAX_ARRAY_BYTES:
                    raise PipelineError(f"{path}: its arrays declare {total:,} bytes together, more than the "
                                        f"{MAX_ARRAY_BYTES:,} bytes (half this machine's memory) they may have")
                arrays = {}
                for info in members:
                    with archive.open(info) as member:
                        arrays[info.filename[: -len(".npy")]] = _read_checked_array(member, f"{path} (member {info.filename})")
                return arrays
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
            raise PipelineError(f"{path}: cannot load array ({first_line(error)})") from None
