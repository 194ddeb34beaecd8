"""Loading a large image competition: images decoded per second and peak resident memory against the arrays.

    .venv/bin/python bench/loading.py [--images 25000] [--side 128] [--work /tmp/kaggle-pipeline-loading]

Makes (once, kept in --work) a CIFAR-style competition of --images PNGs, side x side RGB (Fashion-MNIST items,
upscaled and tinted, when Debian's idx files are there; smooth random shapes otherwise), 80% train with a
labels CSV and 20% test. Then, each in a fresh process so that its peak memory is its own:

  baseline   the notebook way: Image.open(...).convert("RGB") per file into a list, then np.stack
  pipeline   what every stage does: open_workspace (kaggle_pipeline.data: header pass, parallel decoding into
             the final arrays, the fingerprint, the parsed-array cache written to the store)

Prints images/s, the peak resident memory (VmHWM of the process) and its ratio to the final uint8
arrays (target: pipeline <= 2.0), and the speed ratio pipeline/baseline. The two alternate over --rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEAK = """
def peak_bytes():  # VmHWM: this process's own high-water mark (ru_maxrss keeps the parent's across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""
CHILD_BASELINE = PEAK + """
import json, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
folder = Path(sys.argv[1])
started = time.perf_counter()
paths = sorted((folder / "train").iterdir()) + sorted((folder / "test").iterdir())
images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
arrays = np.stack(images)
seconds = time.perf_counter() - started
print(json.dumps({"images": len(paths), "seconds": seconds, "array_bytes": arrays.nbytes,
                  "peak_bytes": peak_bytes()}))
"""
CHILD_PIPELINE = PEAK + """
import json, sys, time
from pathlib import Path
from kaggle_pipeline.workspace import open_workspace
folder, models = Path(sys.argv[1]), Path(sys.argv[2])
started = time.perf_counter()
workspace = open_workspace(folder, models, lock="bench")
seconds = time.perf_counter() - started
competition = workspace.competition
workspace.lock.release()
print(json.dumps({"images": len(competition.x_train) + len(competition.x_test), "seconds": seconds,
                  "array_bytes": competition.x_train.nbytes + competition.x_test.nbytes,
                  "peak_bytes": peak_bytes()}))
"""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def source_images(count: int) -> np.ndarray:
    """count grey 28x28 images: Fashion-MNIST's when installed, smooth random blobs otherwise."""
    debian = Path("/usr/share/datasets/fashion-mnist")
    if (debian / "train-images-idx3-ubyte.gz").exists():
        from kaggle_pipeline.data import fashion_mnist_arrays

        arrays = fashion_mnist_arrays(debian)
        pool = np.concatenate([arrays["x_train"], arrays["x_test"]])
        return pool[np.arange(count) % len(pool)]
    rng = np.random.default_rng(0)
    blobs = rng.integers(0, 256, (count, 7, 7), dtype=np.uint8)
    return blobs.repeat(4, axis=1).repeat(4, axis=2)


def make_competition(folder: Path, count: int, side: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    if (folder / "sampleSubmission.csv").exists():
        return
    staging = Path(tempfile.mkdtemp(prefix=".making-", dir=folder.parent))
    (staging / "train").mkdir()
    (staging / "test").mkdir()
    grey = source_images(count)
    tints = np.random.default_rng(1).uniform(0.4, 1.0, (count, 3))
    train_count = count * 4 // 5

    def write(index: int) -> None:
        image = Image.fromarray(grey[index]).resize((side, side), Image.Resampling.BILINEAR)
        rgb = (np.asarray(image)[..., None] * tints[index]).astype(np.uint8)
        subfolder = "train" if index < train_count else "test"
        Image.fromarray(rgb).save(staging / subfolder / f"{index + 1}.png", compress_level=1)

    started = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count()) as executor:
        for done, _ in enumerate(executor.map(write, range(count)), start=1):
            if done % 5000 == 0:
                say(f"making: {done}/{count} PNGs ({time.perf_counter() - started:.0f} s)")
    labels = np.arange(count) % 10
    (staging / "trainLabels.csv").write_text("id,label\n" + "".join(f"{i + 1},{labels[i]}\n" for i in range(train_count)))
    (staging / "sampleSubmission.csv").write_text("id,label\n" + "".join(f"{i + 1},0\n" for i in range(train_count, count)))
    os.rename(staging, folder)


def measure(kind: str, folder: Path, work: Path) -> dict:
    arguments = [str(folder)]
    # A fresh store each time (no cache to reuse), in a folder this call made: --work may be a folder of the user's,
    # whose models/ this once deleted.
    models_parent = Path(tempfile.mkdtemp(prefix=".bench-loading-models-", dir=work))
    if kind == "pipeline":
        arguments.append(str(models_parent / "models"))
    try:
        return run_child(CHILD_BASELINE if kind == "baseline" else CHILD_PIPELINE, arguments, kind)
    finally:
        shutil.rmtree(models_parent, ignore_errors=True)


def run_child(code: str, arguments: list[str], what: str) -> dict:
    """``code`` run in a fresh Python with this checkout importable: the JSON its last line prints."""
    child = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True, check=False,
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if child.returncode != 0:
        raise SystemExit(f"{what} failed:\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=25000)
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "kaggle-pipeline-loading")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    folder = args.work / f"competition-{args.images}-{args.side}"
    make_competition(folder, args.images, args.side)
    results = {"baseline": [], "pipeline": []}
    for round_number in range(1, args.rounds + 1):
        for kind in ("baseline", "pipeline") if round_number % 2 else ("pipeline", "baseline"):
            result = measure(kind, folder, args.work)
            results[kind].append(result)
            say(f"round {round_number} {kind:9s} {result['images'] / result['seconds']:7.0f} images/s, peak "
                f"{result['peak_bytes'] / 2**30:.2f} GiB for {result['array_bytes'] / 2**30:.2f} GiB of arrays "
                f"({result['peak_bytes'] / result['array_bytes']:.2f}x)")
    best = {kind: min(runs, key=lambda run: run["seconds"]) for kind, runs in results.items()}
    peak = {kind: max(run["peak_bytes"] for run in runs) / runs[0]["array_bytes"] for kind, runs in results.items()}
    summary = {
        "images": args.images, "side": args.side, "cores": len(os.sched_getaffinity(0)),
        "images_per_second": {kind: round(run["images"] / run["seconds"]) for kind, run in best.items()},
        "peak_over_arrays": {kind: round(value, 2) for kind, value in peak.items()},
        "array_gib": round(best["pipeline"]["array_bytes"] / 2**30, 2),
        "speed_ratio_pipeline_over_baseline": round(best["baseline"]["seconds"] / best["pipeline"]["seconds"], 2),
        "peak_target_met": peak["pipeline"] <= 2.0,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
