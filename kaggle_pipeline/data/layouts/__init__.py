# isort: skip_file
"""The folder layouts, one module each; importing this package registers them in detection order (a layout
earlier in the list wins when several are complete: see kaggle_pipeline.data.registry.detect_layout)."""

from kaggle_pipeline.data.layouts import (  # noqa: F401  (imported to register, in this order)
    npy_arrays,
    class_folders,
    file_names,
    labels_csv,
    csv_pixels,
    json_records,
    tfrecords,
)
