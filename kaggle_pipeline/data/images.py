"""Image files to uint8 arrays.

Each file is opened only with the decoder(s) its suffix names and its declared size is checked before a pixel is
decoded; it is turned upright by its EXIF orientation; 16-bit images are brought to 8 bits by the bits the whole
competition uses (``significant_bits``: a 12-bit scan in 16-bit files maps 0..4095 to 0..255), float images by a
fixed range, never clipped (16-bit colour too: Pillow alone would keep each sample's high byte); palette, CMYK
and alpha images become RGB. DICOM scans are read with pydicom (their
stored values; "DICOM" below). A set of images becomes one uint8 array
``(N, height, width, channels)`` (``decode_images``): colour if any image is colour, and one size, chosen by
``image_side`` (the README's "Image sizes" section):

- ``--image-size``/``SIZE=`` given: every image is resized to SIZE x SIZE;
- otherwise, when every image has one size whose longer side is at most ``MAX_DEFAULT_SIDE`` (128): the images
  are kept exactly as they are (Fashion-MNIST's 28x28, an 8x8 digits set, 96x96 scans);
- otherwise (mixed sizes, or photos larger than 128): the median shorter side, bounded to
  ``MIN_DEFAULT_SIDE``..``MAX_DEFAULT_SIDE`` (16..128).

Resizing squashes the whole image to a square (Keras' ``image_dataset_from_directory`` default): nothing is
cropped away, at the price of distorting the aspect of elongated images. It uses Pillow's antialiased
bilinear filter (a JPEG is first decoded at a reduced scale with ``draft``, which is much faster for photos).
Decoding runs on a thread per core (Pillow releases the GIL while it decodes and resizes) straight into the
final array, so loading holds little more than the final arrays (16-bit images are held as uint16 until the
last one is decoded, since their range is the whole competition's: twice their final size more).
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import struct
import sys
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.folders import (
    IMAGE_SUFFIXES,
    SUFFIX_FORMATS,
    check_folder,
    entries,
    image_entries,
    is_dir,
    not_images_note,
)
from kaggle_pipeline.data.pixels import FLOAT_0_255_MIN_MAX, UNIT_TOLERANCE
from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.files import MAX_ARRAY_BYTES, first_line, open_regular
from kaggle_pipeline.progress import RateProgress, format_seconds

logger = logging.getLogger(__name__)

# The formats Pillow opens (DICOM files are read with pydicom instead: _dicom_dataset).
IMAGE_FORMATS = tuple(dict.fromkeys(name for names in SUFFIX_FORMATS.values() for name in names if name != "DICOM"))
# The most pixels (width x height) one image may declare, checked before it is decoded: Pillow's own
# DecompressionBombWarning limit (89.5 million), so that warning never applies. A 48- or 64-megapixel phone
# photo fits (2^25, the limit until 2026-12-06, refused them); a 108-megapixel one, or a bomb, does not.
MAX_IMAGE_PIXELS = 89_478_485
# Decoding prints a progress line at most this often, and a summary when it took longer.
PROGRESS_SECONDS = 2.0

# The default side of resized images: large enough for photos to keep their objects recognisable, small enough
# for a CPU to train on (a 128x128 RGB image costs ~60x a 28x28 grey one per convolution).
MIN_DEFAULT_SIDE = 16
MAX_DEFAULT_SIDE = 128


def image_files(folder: Path) -> list[Path]:
    """The folder's image files (by suffix), sorted; hidden files (._201.png, .DS_Store) are not images."""
    check_folder(folder, "image folder")
    return image_entries(folder, entries(folder))  # a folder named x.png is refused when read


def match_ids(ids: list[str], files: list[Path], folder: Path, ids_path: Path, column: str) -> list[Path]:
    """The image file of each id: the file named exactly ``id``, or else the one whose name without its suffix is
    ``id`` (Kaggle writes ids both ways), or else the one file whose name is ``id`` but for the case of its image
    suffix (``IMG_1.jpg`` for ``IMG_1.JPG``: a CSV written on a system that ignores case). An id may also be a
    path to the file through ``folder`` (``train/1.png``, ``./train_images/1``, Windows' ``train\\1.png``). An id
    matching no file names the files that nearly match; two ids matching one file (``0x0`` and ``0x0.png``,
    perhaps with two labels) are refused."""
    by_name = {path.name: path for path in files}
    by_stem: dict[str, list[Path]] = {}
    by_suffix_case: dict[str, list[Path]] = {}
    for path in files:
        by_stem.setdefault(path.stem, []).append(path)
        by_suffix_case.setdefault(path.stem + path.suffix.lower(), []).append(path)
    matched, missing = [], []
    for written in ids:
        image_id = written if written in by_name or written in by_stem else _name_in_folder(written, folder)
        if image_id in by_name:
            matched.append(by_name[image_id])
        elif len(by_stem.get(image_id, ())) == 1:
            matched.append(by_stem[image_id][0])
        elif image_id in by_stem:
            names = ", ".join(path.name for path in by_stem[image_id])
            raise PipelineError(f"{ids_path}: id {written!r} matches more than one image in {folder} ({names})")
        elif (folded := _suffix_lowered(image_id)) in by_suffix_case:
            if len(by_suffix_case[folded]) > 1:
                names = ", ".join(path.name for path in by_suffix_case[folded])
                raise PipelineError(f"{ids_path}: id {written!r} matches more than one image in {folder} ({names})")
            matched.append(by_suffix_case[folded][0])
        else:
            missing.append(written)
    if missing:
        raise PipelineError(f"{ids_path}: id {missing[0]!r} (column {column!r}) has no image in {folder} "
                            f"({len(missing)} ids without one){_near_misses(missing[0], files, folder)}")
    first_row: dict[Path, int] = {}
    for row, path in enumerate(matched):
        if path in first_row:
            raise PipelineError(f"{ids_path}: ids {ids[first_row[path]]!r} and {ids[row]!r} (column {column!r}) "
                                f"name the same image {path.name}")
        first_row[path] = row
    return matched


def _suffix_lowered(name: str) -> str | None:
    """``name`` with its image suffix in lower case (``IMG_1.jpg`` for ``IMG_1.JPG``); None without one."""
    suffix = Path(name).suffix
    return name[: len(name) - len(suffix)] + suffix.lower() if suffix.lower() in IMAGE_SUFFIXES else None


def _name_in_folder(image_id: str, folder: Path) -> str:
    """The file name at the end of ``image_id`` when the folders before it are ``folder``'s last ones (the whole
    path, for an absolute one); else ``image_id`` as written, which then matches no file."""
    *folders, name = [part for part in image_id.replace("\\", "/").split("/") if part not in ("", ".")] or [""]
    folder_parts = folder.absolute().parts
    if not folders or tuple(folders) != folder_parts[len(folder_parts) - len(folders):]:
        return image_id
    return name


def _near_misses(image_id: str, files: list[Path], folder: Path) -> str:
    """'; nearly: ...' naming files that differ from the id only in case, in extension or in the folders before it."""
    wanted = image_id.lower()
    wanted_stem = Path(image_id).stem.lower() if Path(image_id).suffix.lower() in IMAGE_SUFFIXES else wanted
    near = [path.name for path in files
            if wanted in (path.name.lower(), path.stem.lower()) or path.stem.lower() == wanted_stem]
    if near:
        return (f"; nearly matching: {', '.join(near[:3])} (ids must match a file name, with or without its "
                f"extension, in the same case but for the extension's, or be a path to it through {folder.name}/)")
    if files:
        return f"; the folder holds {len(files)} images such as {files[0].name}"
    return "; the folder holds no images" + not_images_note(folder)


@dataclass(frozen=True)
class ImageHeader:
    """What an image declares before it is decoded: its upright size and whether it is colour."""

    height: int
    width: int
    colour: bool


def read_header(path: Path) -> ImageHeader:
    """Open ``path`` as read_image does (same checks, same errors) without decoding its pixels."""
    if _is_dicom(path):
        rows, columns, samples = _dicom_geometry(_dicom_dataset(path, pixels=False), path)
        return ImageHeader(rows, columns, samples == 3)
    with _opened(path) as image:
        width, height = image.size
        # Pillow's getexif() decodes a whole PNG to look for an eXIf chunk after the pixels: a PNG's orientation
        # is read here only when the chunk came before them (read_image fits any other to the planned size).
        exif_known = image.format != "PNG" or "exif" in image.info
        if exif_known and _orientation(image) in (5, 6, 7, 8):  # a quarter turn: displayed with the sides swapped
            width, height = height, width
        if image.mode not in _GREY_MODES + _COLOUR_MODES + _WIDE_MODES:
            raise PipelineError(f"{path}: cannot read image (pixel mode {image.mode!r} is not supported)")
        return ImageHeader(height, width, image.mode in _COLOUR_MODES and _sixteen_bit_rawmode(image) != "LA;16B")


def read_image(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image as grey (H, W) or RGB (H, W, 3), upright; with ``size`` (height, width), resized to it.

    uint8, except integer images wider than 8 bits (16-bit PNG and TIFF, 32-bit integer TIFF holding 0..65535),
    which stay uint16: how many of those bits carry data is known only from the whole competition
    (``significant_bits``, ``to_eight_bits``)."""
    from PIL import Image

    if _is_dicom(path):
        pixels = _dicom_pixels(path)
    else:
        with _opened(path) as image:
            if size is not None and image.format == "JPEG" and image.size != size[::-1]:
                image.draft(image.mode, size[::-1])  # DCT scaling to at least that size: a fraction of the decoding
            sixteen_bits = _sixteen_bit_rawmode(image)
            image.load()  # an animated GIF (or a multi-page TIFF) stays on its first frame
            pixels = _pixels_of(_upright(image), path)
        if sixteen_bits is not None:
            pixels = _with_low_bytes(path, pixels, sixteen_bits)
    if size is not None and pixels.shape[:2] != tuple(size):
        planes = [pixels] if pixels.dtype == np.uint8 or pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)
        resized = [np.asarray(Image.fromarray(plane).resize(size[::-1], Image.Resampling.BILINEAR)) for plane in planes]
        pixels = resized[0] if len(resized) == 1 else np.stack(resized, axis=-1)  # uint16 colour, plane by plane
    return pixels


@dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes held in another file (a TFRecord's ``image`` feature): read like an image file
    (``read_header``, ``read_image``, ``decode_images``) as JPEG or PNG, and named in errors by ``name``."""

    data: bytes
    name: str

    def __str__(self) -> str:
        return self.name


ENCODED_FORMATS = ("JPEG", "PNG")


@functools.cache
def _quiet_libtiff() -> None:
    """libtiff prints its decoding errors and warnings straight to the process's stderr ("ZIPDecode: Decoding
    error at scanline 0"), beside the one line the pipeline says of the file (Pillow raises for it anyway): set
    its error and warning handlers to none, once, in the libtiff Pillow loaded (found in /proc/self/maps; where
    there is none, nothing is changed)."""
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            found = {line.split()[-1] for line in maps if "libtiff" in line and ".so" in line}
        for library in sorted(found):
            loaded = ctypes.CDLL(library)
            for name in ("TIFFSetErrorHandler", "TIFFSetWarningHandler"):
                handler = getattr(loaded, name)
                handler.argtypes, handler.restype = [ctypes.c_void_p], ctypes.c_void_p
                handler(None)
    except (OSError, AttributeError):
        return


@contextmanager
def _opened(path: Path | EncodedImage):
    """The image opened with the formats its suffix allows, its declared size checked; decoding errors in one line."""
    from PIL import Image, UnidentifiedImageError

    _quiet_libtiff()

    if isinstance(path, EncodedImage):
        formats, opened, kind = ENCODED_FORMATS, nullcontext(io.BytesIO(path.data)), "an image held in a record"
    else:
        formats = SUFFIX_FORMATS.get(path.suffix.lower(), IMAGE_FORMATS)
        opened, kind = open_regular(path), f"a {path.suffix} file"
    with opened as handle, warnings.catch_warnings():
        # Our limit (MAX_IMAGE_PIXELS) is checked below and is lower than Pillow's: its warning never prints. Nor
        # do Pillow's warnings of damaged metadata ("Corrupt EXIF data"): the file is read, or refused in one line.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        try:
            with Image.open(handle, formats=formats) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise PipelineError(f"{path}: the image declares {width}x{height} pixels, more than the "
                                        f"{MAX_IMAGE_PIXELS:,} one image may have (data.MAX_IMAGE_PIXELS)")
                yield image
        except Image.DecompressionBombError as error:
            declared = re.search(r"\((\d+) pixels\)", str(error))
            size = f"{int(declared.group(1)):,}" if declared else "too many"
            raise PipelineError(f"{path}: the image declares {size} pixels, more than the "
                                f"{MAX_IMAGE_PIXELS:,} one image may have (data.MAX_IMAGE_PIXELS)") from None
        except UnidentifiedImageError:
            if handle.seek(0, io.SEEK_END) == 0:  # a download cut off before its first byte, a placeholder
                raise PipelineError(f"{path}: cannot read image (empty: 0 bytes)") from None
            names = " or ".join(formats)
            raise PipelineError(f"{path}: cannot read image (not a {names} file; {kind} is read only as {names})") from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError, RuntimeError, zlib.error, struct.error) as error:
            # RuntimeError: the AVIF decoder's ("Failed to decode image: Missing or empty image item").
            raise PipelineError(f"{path}: cannot read image ({first_line(error)})") from None


def _is_dicom(path: Path | EncodedImage) -> bool:
    return isinstance(path, Path) and SUFFIX_FORMATS.get(path.suffix.lower()) == ("DICOM",)


# DICOM: the stored values of the first frame, as the scanner wrote them. Neither the rescale to Hounsfield units
# nor a display window is applied: the net sees the full stored range, one rule for every scan of the
# competition (16-bit scans then go through significant_bits like 16-bit PNGs). Signed values are shifted to
# start at 0; MONOCHROME1 (0 is white) is inverted so that 0 is black everywhere; YBR colour becomes RGB.
_DICOM_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")
_DICOM_ERRORS = (OSError, ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError, TypeError,
                 EOFError, IndexError, MemoryError, struct.error, zlib.error)


def _dicom_dataset(path: Path, pixels: bool):
    """The DICOM dataset of ``path`` (without its pixel data unless ``pixels``); one line when it is not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    with open_regular(path) as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about every odd element; the pixels are what matter here
        try:
            return pydicom.dcmread(handle, stop_before_pixels=not pixels)
        except InvalidDicomError:
            raise PipelineError(f"{path}: cannot read image (not a DICOM file; a {path.suffix} file is read only "
                                f"as DICOM)") from None
        except _DICOM_ERRORS as error:
            raise PipelineError(f"{path}: cannot read image (DICOM: {first_line(error)})") from None


def _dicom_geometry(dataset, path: Path) -> tuple[int, int, int]:
    """(rows, columns, samples per pixel), checked as a Pillow image's declared size is, before any decoding."""
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        samples, allocated = int(dataset.get("SamplesPerPixel", 1)), int(dataset.get("BitsAllocated", 0))
    except (AttributeError, TypeError, ValueError):
        raise PipelineError(f"{path}: cannot read image (a DICOM file without an image: no Rows or Columns)") from None
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip()
    if rows < 1 or columns < 1:
        raise PipelineError(f"{path}: cannot read image (DICOM declares {columns}x{rows} pixels)")
    if rows * columns > MAX_IMAGE_PIXELS:
        raise PipelineError(f"{path}: the image declares {rows * columns:,} pixels, more than the "
                            f"{MAX_IMAGE_PIXELS:,} one image may have (data.MAX_IMAGE_PIXELS)")
    if samples not in (1, 3) or allocated not in (8, 16) or photometric not in _DICOM_PHOTOMETRIC:
        raise PipelineError(f"{path}: cannot read image (DICOM of {samples} sample(s) per pixel, {allocated} bits "
                            f"allocated, {photometric or 'no'} photometric interpretation: only 8- or 16-bit "
                            f"grey (MONOCHROME1/2) and colour (RGB, YBR) scans are read)")
    return rows, columns, samples


def _dicom_pixels(path: Path) -> np.ndarray:
    """The first frame's stored values: uint8 grey or RGB, or uint16 grey (16 bits allocated) for
    significant_bits; the module's rule above."""
    from pydicom.pixels import pixel_array

    dataset = _dicom_dataset(path, pixels=True)
    _, _, samples = _dicom_geometry(dataset, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pixels = np.asarray(pixel_array(dataset, index=0 if int(dataset.get("NumberOfFrames", 1) or 1) > 1 else None))
        except RuntimeError as error:
            syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
            if syntax is not None and syntax.is_compressed and "missing dependencies" in str(error):
                raise PipelineError(f"{path}: cannot read image (DICOM compressed as {syntax.name}, which needs a "
                                    f"decoder that is not installed: pip install pylibjpeg pylibjpeg-libjpeg "
                                    f"pylibjpeg-openjpeg, or convert the scans to PNG)") from None
            raise PipelineError(f"{path}: cannot read image (DICOM: {first_line(error)})") from None
        except _DICOM_ERRORS as error:
            raise PipelineError(f"{path}: cannot read image (DICOM: {first_line(error)})") from None
    # pydicom has decoded the pixels, so it has checked these: Bits Stored in 1..Bits Allocated, a 0/1 sign.
    allocated = int(dataset.BitsAllocated)
    bits, signed = int(dataset.get("BitsStored") or allocated), int(dataset.get("PixelRepresentation") or 0) == 1
    if samples == 3:
        if pixels.shape[-1:] != (3,):
            raise PipelineError(f"{path}: cannot read image (DICOM colour pixels of shape {pixels.shape})")
        if allocated == 8:
            return pixels.astype(np.uint8)
        return to_eight_bits(np.clip(pixels, 0, (1 << bits) - 1).astype(np.uint16), bits)
    values = pixels.astype(np.int64)
    if signed:  # two's complement: -2**(bits-1).. becomes 0..
        values = values + (1 << (bits - 1))
    if str(dataset.PhotometricInterpretation).strip() == "MONOCHROME1":
        values = ((1 << bits) - 1) - values
    if allocated == 8:
        return np.clip(values, 0, 255).astype(np.uint8)
    return _wide_pixels(values, path)


def _orientation(image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # an EXIF block Pillow cannot parse: the pixels are still the pixels
        return 1


def _upright(image):
    """The image as it is displayed: its EXIF orientation (JPEG, TIFF, WebP, PNG eXIf) applied."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(image) if _orientation(image) in range(2, 9) else image


# 16-bit colour (RGB, RGBA) and 16-bit grey with alpha: Pillow unpacks only each sample's high byte, so a 12-bit
# colour scan would come out with 16 levels per channel. The file is decoded once more with a rawmode that unpacks
# the low bytes: the same samples in the other byte order, or for grey with alpha (LA;16B, an RGBA image to Pillow)
# plain 8-bit RGBA, whose R and G are then the grey sample's high and low byte. Pillow's own decoders do both
# passes (PNG unfiltering, TIFF compression and predictors): these rare files cost one more decode, not a decoder
# of ours. RGBX is RGB with a fourth band of no stated meaning (Planet's near-infrared), dropped like alpha.
# Premultiplied alpha (RGBa) and 16-bit CMYK are converted to RGB by Pillow from their high bytes, as before: their
# conversions are not byte by byte, so the low bytes cannot be added afterwards.
_NATIVE_OTHER = "B" if sys.byteorder == "little" else "L"
_LOW_BYTES = {
    **{f"{mode};16{order}": f"{mode};16{other}"
       for mode in ("RGB", "RGBA", "RGBX") for order, other in (("B", "L"), ("L", "B"))},
    **{f"{mode};16N": f"{mode};16{_NATIVE_OTHER}" for mode in ("RGB", "RGBA", "RGBX")},
    "LA;16B": "RGBA",
}


def _tile_rawmode(args) -> str | None:
    """A tile's rawmode: its args (PNG) or their first item (TIFF's raw and libtiff decoders)."""
    if isinstance(args, tuple) and args:
        args = args[0]
    return args if isinstance(args, str) else None


def _sixteen_bit_rawmode(image) -> str | None:
    """The rawmode of an opened image whose samples are 16-bit colour (or grey with alpha), before it loads; else None."""
    rawmodes = {_tile_rawmode(tile.args) for tile in image.tile}
    rawmode = rawmodes.pop() if len(rawmodes) == 1 else None
    return rawmode if rawmode in _LOW_BYTES else None


def _with_low_bytes(path: Path | EncodedImage, high: np.ndarray, rawmode: str) -> np.ndarray:
    """The 16-bit pixels of ``path``, whose high bytes (Pillow's own decoding of ``rawmode``) are ``high``: uint16
    RGB, or uint16 grey for grey with alpha."""
    low_rawmode = _LOW_BYTES[rawmode]
    with _opened(path) as image:
        image.tile = [tile._replace(args=low_rawmode if isinstance(tile.args, str) else (low_rawmode, *tile.args[1:]))
                      for tile in image.tile]
        image.load()
        low = _pixels_of(_upright(image), path)
    if rawmode == "LA;16B":
        return (low[..., 0].astype(np.uint16) << 8) | low[..., 1]
    return (high.astype(np.uint16) << 8) | low


# Grey modes whose pixels are 8 bits already, colour modes Pillow converts to RGB exactly, and 16-bit/float modes.
_GREY_MODES = ("1", "L", "LA", "La")
_COLOUR_MODES = ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _pixels_of(image, path: Path) -> np.ndarray:
    # Alpha is dropped, not composited: the colour under it is what the pixels say (and what they said before).
    if image.mode in _GREY_MODES:
        return np.asarray(image.convert("L"))
    if image.mode in _COLOUR_MODES:
        return np.asarray(image.convert("RGB"))
    if image.mode in _WIDE_MODES:
        return _wide_pixels(np.asarray(image), path)
    raise PipelineError(f"{path}: cannot read image (pixel mode {image.mode!r} is not supported)")


def _wide_pixels(pixels: np.ndarray, path: Path) -> np.ndarray:
    """16-bit and float grey pixels checked: integers as uint16, floats to uint8 by a fixed range.

    Integers (16-bit, or 32-bit holding 0..65535) stay uint16 for ``to_eight_bits``. Floats follow the npy
    layout's rule, per image: at most 1 + UNIT_TOLERANCE is 0..1 (x255), FLOAT_0_255_MIN_MAX..255 is 0..255;
    NaN, infinity, negative values or anything else is refused in one line. Pillow's own convert("L") clips at
    255 and is never used for these.
    """
    if pixels.dtype.kind == "f":
        if not np.isfinite(pixels).all():
            raise PipelineError(f"{path}: cannot read image (float pixels include NaN or infinity)")
        low, high = float(pixels.min()), float(pixels.max())
        if low >= 0 and high <= 1 + UNIT_TOLERANCE:
            return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
        if low >= 0 and FLOAT_0_255_MIN_MAX <= high <= 255 + UNIT_TOLERANCE:
            return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        raise PipelineError(f"{path}: cannot read image (float pixels from {low:g} to {high:g}: neither 0..1 "
                            f"nor 0..255)")
    low, high = int(pixels.min()), int(pixels.max())
    if low < 0 or high > 65535:
        raise PipelineError(f"{path}: cannot read image (integer pixels from {low} to {high}: outside 0..65535)")
    return pixels.astype(np.uint16)


def significant_bits(highest: int) -> int:
    """The bits a competition's 16-bit images use, from their highest pixel over train and test: 8 to 16.

    Scanners store 10, 12 or 14 bits in 16-bit files; mapping 0..65535 to 0..255 would leave a 12-bit scan 16
    grey levels. The range is 0..2**bits - 1 for every image alike (never per image), so relative brightness
    between images is kept and nothing is clipped.
    """
    return max(8, int(highest).bit_length())


def to_eight_bits(pixels: np.ndarray, bits: int) -> np.ndarray:
    """uint16 pixels of ``bits`` significant bits to uint8: 0..2**bits - 1 to 0..255, rounded."""
    return np.rint(pixels.astype(np.float32) * np.float32(255.0 / ((1 << bits) - 1))).astype(np.uint8)


def image_side(headers: list[ImageHeader], image_size: int | None) -> int | None:
    """The side every image is resized to, or None to keep them as they are (the module's docstring)."""
    if image_size is not None:
        return image_size
    sizes = {(header.height, header.width) for header in headers}
    if len(sizes) == 1 and max(next(iter(sizes))) <= MAX_DEFAULT_SIDE:
        return None
    median = int(np.median([min(header.height, header.width) for header in headers]))
    return min(MAX_DEFAULT_SIDE, max(MIN_DEFAULT_SIDE, median))


def resize_images(images: np.ndarray, side: int | None) -> np.ndarray:
    """uint8 NHWC images resized to side x side (the same filter as image files); unchanged without ``side``."""
    from PIL import Image

    if side is None or images.shape[1:3] == (side, side):
        return images
    resized = np.empty((len(images), side, side, images.shape[3]), dtype=np.uint8)
    for row, image in enumerate(images):
        pixels = image[..., 0] if image.shape[2] == 1 else image
        out = np.asarray(Image.fromarray(pixels).resize((side, side), Image.Resampling.BILINEAR))
        resized[row] = out[..., np.newaxis] if out.ndim == 2 else out
    return resized


# With --skip-unreadable, at most this share of the training images may be left out: more says the download is
# damaged, or the files are of a kind this machine cannot decode, and training on the rest would hide it.
MAX_UNREADABLE_SHARE = 0.1
SKIP_HINT = "SKIP_UNREADABLE=1 (--skip-unreadable) leaves unreadable training images out"


def decode_images(path_sets: list[list[Path]], image_size: int | None = None, what: str = "images",
                  skip_unreadable: bool = False) -> tuple[list[np.ndarray], list[tuple[int, str]]]:
    """Each list of paths as one uint8 array ``(N, height, width, channels)``: one size and one channel count for
    all of them (train and test must agree), decoded in parallel into the final arrays, with progress lines.

    The first list holds the training images. An image that cannot be read stops the load in one line, unless
    ``skip_unreadable``: then training images that cannot be read (a download cut off, a file that is not an
    image) are left out of the first array, and returned as ``(index in the first list, error line)`` beside the
    arrays, so the caller drops their labels. A test image is never left out: the submission needs every one.
    """
    paths = [path for path_set in path_sets for path in path_set]
    if not paths:
        raise PipelineError("no images to read")
    training = len(path_sets[0])
    unreadable: dict[int, str] = {}

    def guarded(function):
        """``function(index)``; a training image's error is recorded (skipping) or given the way out (not)."""
        def call(index: int):
            try:
                return function(index)
            except PipelineError as error:
                if index >= training:
                    raise PipelineError(f"{error} (a test image cannot be left out: the submission needs every "
                                        "one)" if skip_unreadable else str(error)) from None
                if not skip_unreadable:
                    raise PipelineError(f"{error}; {SKIP_HINT}") from None
                unreadable[index] = str(error)
                return None
        return call

    headers = parallel_map(guarded(lambda index: read_header(paths[index])), range(len(paths)), f"reading {what} headers")
    readable = [header for header in headers if header is not None]
    if not readable:
        _check_left_out(sorted(unreadable.items()), training, paths[0])
    side = image_side(readable, image_size)
    first = readable[0]
    if side is None:
        height, width = first.height, first.width
    else:
        height = width = side
    channels = 3 if any(header.colour for header in readable) else 1
    _check_array_size(len(readable), (height, width, channels), image_size, paths[0])
    arrays = [np.empty((len(path_set), height, width, channels), dtype=np.uint8) for path_set in path_sets]
    rows = [(array, row) for array in arrays for row in range(len(array))]
    wide = {}  # index -> uint16 pixels, held until every image's highest pixel is known

    def place(index: int, image: np.ndarray) -> None:
        array, row = rows[index]
        array[row] = image[..., np.newaxis] if image.ndim == 2 else image

    def decode(index: int) -> None:
        if index in unreadable:
            return
        image = read_image(paths[index], (height, width))
        if image.dtype == np.uint16:
            wide[index] = image
        else:
            place(index, image)

    parallel_map(guarded(decode), range(len(paths)), f"decoding {what}", size=(height, width, channels))
    if wide:
        highest = max(int(image.max()) for image in wide.values())
        bits = significant_bits(highest)
        logger.info(f"data: {len(wide):,} image(s) of 16 bits, highest pixel {highest:,}: {bits} significant bits, "
                    f"0..{(1 << bits) - 1:,} read as 0..255")
        for index, image in wide.items():
            place(index, to_eight_bits(image, bits))
    left_out = sorted(unreadable.items())
    if left_out:
        _check_left_out(left_out, training, paths[left_out[0][0]])
        kept = np.setdiff1d(np.arange(training), [index for index, _ in left_out])
        arrays[0] = arrays[0][kept]
    return arrays, left_out


def _check_array_size(count: int, shape: tuple[int, int, int], image_size: int | None, first) -> None:
    """The decoded images must fit in MAX_ARRAY_BYTES (half this machine's memory, as for any array the pipeline
    loads) before they are allocated: SIZE=512 on 37,500 photos would otherwise fill the memory for minutes and
    be killed without a word. Training holds them again (TensorFlow's copy), so even this much is a squeeze."""
    needed = count * shape[0] * shape[1] * shape[2]
    if needed <= MAX_ARRAY_BYTES:
        return
    problem = (f"{count:,} images of {shape[0]}x{shape[1]}x{shape[2]} need {needed / 2**30:.1f} GiB as arrays, more "
               f"than the {MAX_ARRAY_BYTES / 2**30:.1f} GiB (half this machine's memory) they may have")
    if image_size is not None:
        raise ParameterError("image_size", image_size, f"{problem}; a smaller side fits")
    where = first.parent if isinstance(first, Path) else first
    raise PipelineError(f"{where}: {problem}; resize them smaller with --image-size (SIZE=)")


def left_out_of(labels, left_out: list[tuple[int, str]]) -> dict:
    """A layout's training labels without the images ``decode_images`` left out, and those images' error lines.
    A class whose every image was left out stops the load: it would vanish from the predictions unnoticed."""
    labels = np.asarray(labels)
    kept = np.delete(labels, [index for index, _ in left_out])
    remaining = set(kept.tolist())
    for index, message in left_out:
        if labels[index] not in remaining:
            raise PipelineError(f"{message}; no training image of class {str(labels[index])!r} can be read")
    return {"train_labels": kept, "left_out": [message for _, message in left_out]}


def _check_left_out(left_out: list[tuple[int, str]], training: int, first: Path) -> None:
    """Unreadable training images may be left out up to MAX_UNREADABLE_SHARE of them (load_competition names them,
    once the whole load has passed its checks)."""
    if len(left_out) > MAX_UNREADABLE_SHARE * training:
        raise PipelineError(f"{first}: {len(left_out):,} of {training:,} training images cannot be read (this one: "
                            f"{left_out[0][1].removeprefix(f'{first}: ')}), more than the {MAX_UNREADABLE_SHARE:.0%} "
                            "--skip-unreadable leaves out: a damaged download, or files this machine cannot decode")


def parallel_map(function, items, label: str, size=None) -> list:
    """``function`` over ``items`` on a thread per core, results in order, a progress line every few seconds.

    The first failing item (in order) raises; the others are not waited for longer than their running calls.
    """
    items = list(items)
    workers = max(1, min(len(items), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
    progress = RateProgress(logger.info, f"data: {label}", len(items), PROGRESS_SECONDS)
    results = []
    with ThreadPoolExecutor(max_workers=workers) as executor:
        try:
            for done, result in enumerate(executor.map(function, items), start=1):
                results.append(result)
                progress.update(done)
        except BaseException:
            executor.shutdown(wait=True, cancel_futures=True)
            raise
    seconds = progress.seconds()
    if seconds >= PROGRESS_SECONDS:
        shape = f" to {size[1]}x{size[0]}x{size[2]}" if size else ""
        logger.info(f"data: {label}{shape}: {len(items):,} in {format_seconds(seconds)} "
                    f"({len(items) / seconds:,.0f}/s on {workers} threads)")
    return results


def test_files_like_sample(folders: list[Path], sample: pd.DataFrame, sample_path: Path, labelled=(),
                           labels_path: Path | None = None) -> list[Path]:
    """The test image of each sample submission row, in the sample's order: every id must match one image
    (by file name, with or without its extension) and every test image must be in the sample. In a folder
    shared with the training images, the ``labelled`` ones (listed in ``labels_path``) are not test images.
    ``folders``: the test folder, or one per stage of a two-stage competition (``folders.test_folders``), where an
    id names an image by a path through its stage's folder (``test_stg2/image_00001.jpg``) or by a name that
    only one stage's folder holds."""
    labelled = set(labelled)
    files_of = {}
    for folder in folders:
        files_of[folder] = [path for path in image_files(folder) if path not in labelled]
        if not files_of[folder]:
            inner = [path.name + "/" for path in entries(folder) if is_dir(path)]
            inside = f" (test images lie in it, or in its only folder; it holds {', '.join(inner[:3])})" if inner else ""
            raise PipelineError(f"{folder}: no test images" + (f" beside those {labels_path.name} labels" if labelled
                                                               else "") + inside + not_images_note(folder))
    ids = sample.iloc[:, 0].str.strip().tolist()
    column = sample.columns[0]
    if len(folders) == 1:
        matched = match_ids(ids, files_of[folders[0]], folders[0], sample_path, column)
    else:
        matched = _match_across_stages(ids, files_of, sample_path, column)
    listed = set(matched)
    unlisted = [path for files in files_of.values() for path in files if path not in listed]
    if unlisted and labelled:
        raise PipelineError(f"{unlisted[0]}: image is neither in {labels_path.name} nor in {sample_path.name} "
                            f"({len(unlisted)} such images); in a folder holding both, each image is a training "
                            "image or a test image")
    if unlisted:
        raise PipelineError(f"{unlisted[0]}: test image is not in {sample_path.name} ({len(unlisted)} such images); "
                            "the sample submission lists every test image once")
    return matched


def _match_across_stages(ids: list[str], files_of: dict[Path, list[Path]], sample_path: Path, column: str) -> list[Path]:
    """``match_ids`` over one folder per stage: each id goes to the folder it is a path through, or else to the
    one folder holding a file of its name (with or without the extension, or but for the extension's case)."""
    names_of = {folder: {name for path in files for name in (path.name, path.stem, path.stem + path.suffix.lower())}
                for folder, files in files_of.items()}
    rows_of: dict[Path, list[int]] = {folder: [] for folder in files_of}
    missing = []
    for row, written in enumerate(ids):
        owners = ([folder for folder in files_of if _name_in_folder(written, folder) != written]
                  or [folder for folder, names in names_of.items() if written in names or _suffix_lowered(written) in names])
        if len(owners) > 1:
            raise PipelineError(f"{sample_path}: id {written!r} (column {column!r}) names an image in each of "
                                f"{', '.join(folder.name + '/' for folder in owners)}; an id must name one (a path "
                                f"through its folder, {owners[-1].name}/{written}, would)")
        if owners:
            rows_of[owners[0]].append(row)
        else:
            missing.append(written)
    if missing:
        raise PipelineError(f"{sample_path}: id {missing[0]!r} (column {column!r}) has no image in "
                            f"{' or '.join(folder.name + '/' for folder in files_of)} ({len(missing)} ids without one)")
    matched: list[Path] = [Path()] * len(ids)
    for folder, rows in rows_of.items():
        for row, path in zip(rows, match_ids([ids[row] for row in rows], files_of[folder], folder, sample_path, column),
                             strict=True):
            matched[row] = path
    return matched
