"""Competition folders in, uint8 image arrays out.

A competition folder, as Kaggle ships it, comes in one of the registered layouts (``list_layouts()``; one
module each in ``kaggle_pipeline/data/layouts/``, detected in this order, ``--layout`` overrides):

``npy``        ``train_x.npy``, ``train_y.npy``, ``test_x.npy`` (or one ``.npz`` holding them)
``folders``    ``train/<class name>/<image>`` and ``test/<image>`` (also ``imgs/train/<class>/``)
``filenames``  ``train/<label>.<anything>.<ext>`` (``cat.0.jpg``) and ``test/<image>``
``images``     ``train/<id>.<ext>`` and ``test/<id>.<ext>`` with a labels CSV (``id,label``) under any name
``csv``        ``train.csv`` (``label,pixel0..pixelK``) and ``test.csv`` (pixels, with or without an id column)
``json``       ``train.json`` and ``test.json``: records with an id, bands of pixels and the label (Statoil's icebergs)
``tfrecords``  ``train/*.tfrec`` (and ``val/``) and ``test/*.tfrec``: Examples of an encoded image, its class and id

and always a sample submission (``sample_submission.csv`` or ``sampleSubmission.csv``) whose first column
holds the ids; the columns after it are one label column or one probability column per class. The sample
submission dictates the output: its ids, their order and its header. ``load_competition`` returns the test
images in the sample submission's order, so every later stage can work with row numbers. Image ids match file
names with or without the extension (whose case may differ: ``1.PNG`` for ``1.png``), or paths to the files
through their folder (``train/1.png``).

A ``solution.csv`` (id, label) beside them is an answer key used only for local scoring.

The folder is treated as hostile (see docs/RELIABILITY.md, "Hostile data folders"):

- only regular files are read (kaggle_pipeline.files): a FIFO, a device, a socket or a folder where a file
  is expected is refused in one line; symbolic links to regular files are followed;
- names starting with ``.`` (``.DS_Store``, macOS ``._201.png`` resource forks, ``.ipynb_checkpoints``) are
  ignored everywhere in the folder and in its image folders;
- images are opened only with the format(s) their suffix names (``SUFFIX_FORMATS``: PNG, JPEG, TIFF, BMP, WebP, Netpbm,
  GIF with Pillow; DICOM with pydicom), their declared size checked against ``MAX_IMAGE_PIXELS`` before a pixel is
  decoded; 16-bit images are brought to 8 bits by the competition's significant bits, float images by a fixed
  range, never clipped (kaggle_pipeline.data.images);
- train and test pixels of CSV and array layouts are brought to 0..255 by one rule decided for the
  competition (``PIXEL_RULE``, kaggle_pipeline.data.pixels).

Modules: ``folders`` (listings), ``tables`` (sample submission, CSV tables), ``pixels`` (numeric pixel arrays),
``images`` (image files, sizes, parallel decoding), ``registry`` and ``layouts`` (one module per layout),
``competition`` (loading, cache, labels), ``split`` (validation split), ``fashion_mnist`` (the default
competition, and the writer of prepared competition folders), ``dataset`` (a labelled dataset made a competition).
"""

from kaggle_pipeline.data import layouts  # noqa: F401  (registers the layouts)
from kaggle_pipeline.data.competition import (
    Competition,
    answer_key_labels,
    encode_labels,
    load_competition,
    save_cache,
    source_files,
)
from kaggle_pipeline.data.fashion_mnist import (
    DEBIAN_FASHION_MNIST,
    PREPARED_MARKER,
    fashion_mnist_arrays,
    prepare_fashion_mnist,
    read_idx,
    write_pixel_competition,
)
from kaggle_pipeline.data.folders import SUFFIX_FORMATS
from kaggle_pipeline.data.images import MAX_IMAGE_PIXELS
from kaggle_pipeline.data.pixels import PIXEL_RULE
from kaggle_pipeline.data.registry import detect_layout, get_layout, list_layouts, register_layout
from kaggle_pipeline.data.split import make_split, single_image_rows
from kaggle_pipeline.data.tables import (
    find_sample_submission,
    read_answer_key,
    read_sample_submission,
    read_submission_table,
)

__all__ = [
    "DEBIAN_FASHION_MNIST", "MAX_IMAGE_PIXELS", "PIXEL_RULE", "PREPARED_MARKER", "SUFFIX_FORMATS", "Competition",
    "answer_key_labels", "detect_layout", "encode_labels", "fashion_mnist_arrays", "find_sample_submission",
    "get_layout", "list_layouts", "load_competition", "make_split", "prepare_fashion_mnist", "read_answer_key",
    "read_idx", "read_sample_submission", "read_submission_table", "register_layout", "save_cache",
    "single_image_rows", "source_files", "write_pixel_competition",
]
