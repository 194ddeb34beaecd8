"""Loading competitions shipped as records: the json layout (Statoil's icebergs) and the tfrecords layout (Petals
to the Metal), at their real sizes, against the way their notebooks load them.

    .venv/bin/python bench/record_loading.py [--rounds 1] [--work /tmp/kaggle-pipeline-records] [--json FILE]

Makes (once, kept in --work) synthetic copies of their size: 1,604 train + 8,424 test records of two 75x75
float bands in dB (2.3 GB of JSON), and 12,753 train + 3,712 val + 7,382 test 192x192 JPEGs in 48 .tfrec files
written by TensorFlow's TFRecordWriter. Then, each in a fresh process so that its peak memory is its own:

  json baseline        the notebooks' way: pandas.read_json of both files, np.stack of the bands (float arrays)
  json pipeline        kaggle_pipeline.data.load_competition (parse, check, bands to uint8 RGB by one range)
  tfrecords baseline   the notebooks' way: tf.data.TFRecordDataset, parse_single_example, decode_jpeg, resize to
                       128x128 (as the pipeline resizes), batched into numpy arrays
  tfrecords pipeline   load_competition (records parsed without TensorFlow, threads decoding into the arrays)

Prints seconds, the peak resident memory (VmHWM) and the speed ratio pipeline/baseline for each layout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loading import PEAK, run_child, say  # noqa: E402  (the sibling bench's peak-memory probe and child runner)

JSON_BASELINE = PEAK + """
import json, sys, time
import numpy as np, pandas as pd
folder = sys.argv[1]
started = time.perf_counter()
arrays = []
for name in ("train.json", "test.json"):
    table = pd.read_json(f"{folder}/{name}")
    arrays.append(np.stack([np.stack(table[band].to_numpy()) for band in ("band_1", "band_2")], axis=-1))
print(json.dumps({"seconds": time.perf_counter() - started, "images": sum(map(len, arrays)),
                  "peak_bytes": peak_bytes()}))
"""
TFRECORDS_BASELINE = PEAK + """
import glob, json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
started = time.perf_counter()
import numpy as np, tensorflow as tf
folder = sys.argv[1] + "/tfrecords-jpeg-192x192"
def load(pattern, labelled):
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "id": tf.io.FixedLenFeature([], tf.string)}
    if labelled:
        spec["class"] = tf.io.FixedLenFeature([], tf.int64)
    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        image = tf.image.resize(tf.io.decode_jpeg(example["image"], channels=3), (128, 128))
        return tf.cast(tf.round(image), tf.uint8)
    files = sorted(glob.glob(f"{folder}/{pattern}/*.tfrec"))
    dataset = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE)
    batches = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(512).prefetch(2)
    return np.concatenate([batch.numpy() for batch in batches])
arrays = [load("train", True), load("val", True), load("test", False)]
print(json.dumps({"seconds": time.perf_counter() - started, "images": sum(map(len, arrays)),
                  "peak_bytes": peak_bytes()}))
"""
PIPELINE = PEAK + """
import json, sys, time
started = time.perf_counter()
from kaggle_pipeline.data import load_competition
competition = load_competition(sys.argv[1], write_cache=False)
print(json.dumps({"seconds": time.perf_counter() - started,
                  "images": len(competition.x_train) + len(competition.x_test),
                  "layout": competition.layout, "shape": list(competition.x_train.shape[1:]),
                  "peak_bytes": peak_bytes()}))
"""


def make_json(folder: Path) -> None:
    if (folder / "sample_submission.csv").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    test_ids = []
    for name, count in (("train.json", 1604), ("test.json", 8424)):
        with open(folder / f".{name}.tmp", "w") as handle:
            handle.write("[")
            for number in range(count):
                record = {"id": f"{name[:2]}{number:07x}", "band_1": rng.normal(-20, 5, 5625).round(4).tolist(),
                          "band_2": rng.normal(-26, 4, 5625).round(4).tolist(), "inc_angle": 39.5}
                if name == "train.json":
                    record["is_iceberg"] = int(number % 2)
                else:
                    test_ids.append(record["id"])
                handle.write(("," if number else "") + json.dumps(record))
            handle.write("]")
        os.replace(folder / f".{name}.tmp", folder / name)
    (folder / "sample_submission.csv").write_text("id,is_iceberg\n" + "".join(f"{i},0.5\n" for i in test_ids))
    say(f"making: json competition in {time.perf_counter() - started:.0f} s")


def make_tfrecords(folder: Path) -> None:
    if (folder / "sample_submission.csv").exists():
        return
    import io

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from PIL import Image

    from kaggle_pipeline.data import fashion_mnist_arrays

    debian = Path("/usr/share/datasets/fashion-mnist")
    pool = fashion_mnist_arrays(debian)["x_train"] if debian.exists() else \
        np.random.default_rng(0).integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    started, number, test_ids = time.perf_counter(), 0, []
    for split, count in (("train", 12753), ("val", 3712), ("test", 7382)):
        (folder / "tfrecords-jpeg-192x192" / split).mkdir(parents=True, exist_ok=True)
        per_file = -(-count // 16)
        for part in range(16):
            path = folder / "tfrecords-jpeg-192x192" / split / f"{part:02d}-192x192-{per_file}.tfrec"
            with tf.io.TFRecordWriter(str(path)) as writer:
                for _ in range(min(per_file, count - part * per_file)):
                    grey = Image.fromarray(pool[number % len(pool)]).resize((192, 192), Image.Resampling.BILINEAR)
                    encoded = io.BytesIO()
                    grey.convert("RGB").save(encoded, "JPEG", quality=90)
                    feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded.getvalue()])),
                               "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"{number:09x}".encode()]))}
                    if split == "test":
                        test_ids.append(f"{number:09x}")
                    else:
                        feature["class"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[number % 104]))
                    writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
                    number += 1
    (folder / "sample_submission.csv").write_text("id,label\n" + "".join(f"{i},0\n" for i in test_ids))
    say(f"making: tfrecords competition in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "kaggle-pipeline-records")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    folders = {"json": args.work / "iceberg", "tfrecords": args.work / "petals"}
    make_json(folders["json"])
    make_tfrecords(folders["tfrecords"])
    baselines = {"json": JSON_BASELINE, "tfrecords": TFRECORDS_BASELINE}
    results = {layout: {"baseline": [], "pipeline": []} for layout in folders}
    for round_number in range(1, args.rounds + 1):
        for layout, folder in folders.items():
            kinds = ("baseline", "pipeline") if round_number % 2 else ("pipeline", "baseline")
            for kind in kinds:
                result = run_child(baselines[layout] if kind == "baseline" else PIPELINE, [str(folder)], f"{layout} {kind}")
                results[layout][kind].append(result)
                say(f"round {round_number} {layout:9s} {kind:8s} {result['images']:,} images in "
                    f"{result['seconds']:.1f} s, peak {result['peak_bytes'] / 2**30:.2f} GiB")
    summary = {}
    for layout, runs in results.items():
        best = {kind: min(run["seconds"] for run in kind_runs) for kind, kind_runs in runs.items()}
        summary[layout] = {
            "seconds": {kind: round(value, 1) for kind, value in best.items()},
            "peak_gib": {kind: round(max(run["peak_bytes"] for run in kind_runs) / 2**30, 2)
                         for kind, kind_runs in runs.items()},
            "speed_ratio_pipeline_over_baseline": round(best["baseline"] / best["pipeline"], 2),
        }
    summary["cores"] = len(os.sched_getaffinity(0))
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
