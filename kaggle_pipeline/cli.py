"""``python -m kaggle_pipeline <stage>``: data, search, ensemble, stack, submit, all, report, status, download,
submit-kaggle.

Stages talk only through files (``models/<competition>/``, ``submissions/<competition>/``), so any stage
can be rerun or resumed alone. A problem with the input prints one line, ``error: ...``, and exits 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import shutil
import sys
from operator import attrgetter
from pathlib import Path

from kaggle_pipeline.abort import MARGIN
from kaggle_pipeline.data import list_layouts
from kaggle_pipeline.errors import ParameterError, PipelineError, install_stop_handlers
from kaggle_pipeline.executors import EXECUTORS

# Before any stage imports TensorFlow (none of the imports above does): its C++ start-up chatter off.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

logger = logging.getLogger(__name__)

DEFAULT_DATA = Path("data/fashion-mnist")

# Settings each preset implies; any option given on the command line wins.
PRESETS = {
    # About a quarter of an hour on a 2-core CPU: a short search on a subset, then 3 runs on all the data, each
    # the 3,000 optimizer steps a run takes at least (kaggle_pipeline.epochs: longer runs vote better at equal
    # time than more short ones; docs/PERFORMANCE.md, "Levers").
    "quick": {"space": "vgg-quick", "evals": 3, "search_epochs": 2, "subset": 12000, "n": 3, "epochs": 8, "hours": None,
              "recipes": 1},
    # Two hours on a 2-core CPU: the wide net with and without mirror images on a subset, then runs of at least
    # 30 epochs until 30 are kept or the time budget ends; the budget lengthens the runs so that a few of them fill
    # it (kaggle_pipeline.budget: one 30-epoch member beat a vote of twelve 15-epoch runs; docs/PERFORMANCE.md,
    # "The full preset"). The runs alternate between the two trials (RECIPES=2): a mirror-trained member votes
    # better beside the others than one more of the same recipe. EVALS=30 adds a TPE search of the space.
    "full": {"space": "vgg-wide", "evals": 2, "search_epochs": 5, "subset": 20000, "n": 30, "epochs": 30,
             "hours": 1.85, "recipes": 2},
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (``error: ...``, exit 2) like every other refusal."""

    def error(self, message: str):
        self.exit(2, f"error: {' '.join(message.split())}\n")


# Option types: each refuses a value that would crash or poison the store later, before anything is written.
# Seeds leave room for seed + k (run k, trial k) below 2**32, the largest seed numpy and Keras take.
MAX_SEED = 2**31 - 1


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def at_least(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        value = _integer(text)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number_in(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False):
    def parse(text: str) -> float:
        value = _number(text)
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            left = "" if low is None else f"{'above' if low_open else 'at least'} {low:g}"
            right = "" if high is None else f"{'below' if high_open else 'at most'} {high:g}"
            raise argparse.ArgumentTypeError(f"must be {' and '.join(part for part in (left, right) if part)}, got {value:g}")
        return value

    parse.__name__ = "number"
    return parse


def user_path(text: str) -> Path:
    """A path as typed, but a leading ``~`` (or ``~user``) is that home folder unless a file so named exists:
    zsh (macOS's shell) leaves ``make all DATA=~/kaggle/x`` unexpanded, and make and the Makefile pass it on as
    typed, so the README's own examples would otherwise look for a folder named ``~``."""
    if text.startswith("~") and not os.path.lexists(text):
        return Path(os.path.expanduser(text))
    return Path(text)


SEED = at_least(0, MAX_SEED)
COUNT = at_least(1, 1_000_000)


def _space(text: str) -> str:
    from kaggle_pipeline.spaces import list_spaces  # hyperopt only, no TensorFlow

    if text not in list_spaces():
        raise argparse.ArgumentTypeError(f"unknown search space {text!r}; choose one of {', '.join(list_spaces())}")
    return text


def _space_help() -> str:
    from kaggle_pipeline.spaces import list_spaces

    spaces = ", ".join(f"{name} ({description})" if description else name for name, description in list_spaces().items())
    return "search space: " + spaces.replace("%", "%%")


def build_parser() -> argparse.ArgumentParser:
    # The console script names itself; 'python -m' shows as __main__.py, so it is spelled out.
    program = "kaggle-pipeline" if Path(sys.argv[0]).name == "kaggle-pipeline" else "python -m kaggle_pipeline"
    parser = OneLineParser(prog=program, description=__doc__.splitlines()[0])
    _verbosity(parser, top=True)
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    data = stages.add_parser("data", help="prepare the default competition (Fashion-MNIST), or a labelled dataset "
                                          "(--dataset), as a Kaggle folder with a local answer key")
    data.add_argument("--out", type=user_path, default=None, metavar="FOLDER",
                      help=f"folder to write, new or empty (default: {DEFAULT_DATA}; with --dataset, data/<the dataset "
                           "folder's name>, or data/<name>-competition when the dataset is that folder)")
    data.add_argument("--source", type=user_path, default=None, metavar="FOLDER",
                      help="folder with the Fashion-MNIST idx .gz files (default: Debian's /usr/share/datasets/fashion-mnist)")
    data.add_argument("--dataset", type=user_path, default=None, metavar="FOLDER",
                      help="instead, a labelled image dataset (class folders, with or without train/val/test splits: "
                           "Chest X-Ray, Intel Image Classification, PetImages; split lists such as Food-101's "
                           "meta/test.txt; a CSV or MATLAB files labelling its image files (Flowers-102's imagelabels.mat, "
                           "Stanford Cars' annotations); labelled pixel tables; arrays: Keras' "
                           "mnist.npz, CIFAR's python batches, HDF5 and MATLAB files such as SVHN's) made a "
                           "competition with a local answer key; its images are linked, never copied or written. "
                           "The .zip Kaggle's site downloads is unpacked into data/<its name> first")
    data.add_argument("--test-fraction", type=number_in(0, 1, low_open=True, high_open=True), default=None, metavar="F",
                      help="with --dataset without a test split: the share of each class held out as the test set "
                           "(default 0.2)")
    data.add_argument("--label-column", default=None, metavar="NAME",
                      help="with --dataset labelled by a CSV (of its image files, or of pixels): the column of "
                           "labels, where no column is named label, class, target, ... (HAM10000: dx; FER2013: "
                           "emotion); with pickled batches, HDF5 or MATLAB files, their labels' key, array or "
                           "field (CIFAR-100: coarse_labels)")

    def common(stage: argparse.ArgumentParser) -> None:
        stage.add_argument("--data", type=user_path, default=DEFAULT_DATA, help="competition folder (default: %(default)s)")
        stage.add_argument("--name", help="competition name for models/ and submissions/ (default: the data folder's name, "
                                                     "plus -full with the full preset)")
        stage.add_argument("--models-dir", type=user_path, default=Path("models"), help="default: %(default)s")
        stage.add_argument("--layout", choices=tuple(list_layouts()), help="override the detected folder layout")
        stage.add_argument("--image-size", type=at_least(4, 1024), metavar="SIDE",
                           help="resize every image to SIDE x SIDE (SIZE=; default: images of one size up to 128 px kept, "
                                "others the median shorter side within 16..128; fixed per store)")
        stage.add_argument("--skip-unreadable", action="store_true",
                           help="leave out training images that cannot be read (a download cut off, a file that is "
                                "not an image), at most 10%% of them, each named in a warning and in the store's "
                                "store.json (SKIP_UNREADABLE=1; fixed per store once used); test images never")
        stage.add_argument("--val-fraction", type=number_in(0, 1, low_open=True, high_open=True), help="validation share of train (default 0.1; fixed per store)")
        stage.add_argument("--split-seed", type=SEED, help="seed of the validation split (default 0; fixed per store)")
        stage.add_argument("--preset", choices=tuple(PRESETS), default="quick", help="default settings (default: %(default)s)")

    def training_options(stage: argparse.ArgumentParser) -> None:
        # Checked by train.choose_precision, which holds the list; importing it here would load TensorFlow.
        stage.add_argument("--precision", default="auto",
                           help="auto (float16 on a GPU, bfloat16 on CPUs with avx512_bf16/AMX, else float32), "
                                "float32, mixed_bfloat16 or mixed_float16")
        stage.add_argument("--executor", choices=EXECUTORS, default="local",
                           help="where runs train: local (here, one at a time) or ray (Ray tasks on a local Ray "
                                "instance or the cluster at --ray-address/RAY_ADDRESS; make setup-ray) (default: %(default)s)")
        stage.add_argument("--ray-address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray instance)")
        stage.add_argument("--cpus-per-run", type=at_least(1, 4096),
                           help="with --executor ray on a cluster without GPUs: CPUs (and TensorFlow threads) per run "
                                "(default: 1)")
        stage.add_argument("--tensorboard", action="store_true",
                           help="also log every epoch to models/<competition>/tensorboard/ (view with "
                                "'.venv/bin/tensorboard --logdir models/<competition>/tensorboard')")

    def search_options(stage: argparse.ArgumentParser) -> None:
        stage.add_argument("--evals", type=at_least(1, 100_000), help="total trials wanted; a rerun continues up to this many")
        stage.add_argument("--search-epochs", type=at_least(1, 100_000), help="epochs per trial (EPOCHS= sets both stages)")
        stage.add_argument("--subset", type=at_least(0), help="training images per trial (0 = all)")
        stage.add_argument("--space", type=_space, help=_space_help())
        stage.add_argument("--search-seed", type=SEED, default=1, help="default: %(default)s")

    def ensemble_options(stage: argparse.ArgumentParser) -> None:
        stage.add_argument("--n", type=COUNT, help="kept runs wanted")
        stage.add_argument("--folds", type=at_least(2, 20), metavar="K",
                           help="k-fold members (FOLDS=): run i holds out one of K folds of every labelled image, "
                                "trains on the rest; submit votes on out-of-fold predictions (default: off, runs "
                                "validate on the fixed split; fixed per store once used)")
        stage.add_argument("--recipes", type=at_least(1, 100), metavar="K",
                           help="train the runs from the K best search trials in turn (RECIPES=): members that err "
                                "differently; the vote weighs them by how they vote together (default: the preset's, "
                                "1 for quick, 2 for full)")
        stage.add_argument("--threshold", type=number_in(-1, 1_000_000),
                           help="the validation score (by the store's metric) a run must reach to be kept: at least "
                                "it, at most it for logloss (default: best search trial - 0.01; logloss: + 10%%)")
        stage.add_argument("--max-runs", type=COUNT, help="cap on attempts in the store (default: max(2N, N+5))")
        stage.add_argument("--epochs", type=at_least(1, 100_000), help="epochs per run")
        stage.add_argument("--seed", type=SEED, default=1000, help="run k trains with seed SEED+k (default: %(default)s)")
        stage.add_argument("--hours", type=number_in(0, 10_000, low_open=True),
                           help="time budget of this ensemble call: no run starts that would not finish inside it; "
                                "with 'all', of the whole job: the search takes at most a quarter, the runs the rest "
                                "(kaggle_pipeline.budget) (default: the preset's; none for quick)")
        stage.add_argument("--no-early-abort", dest="early_abort", action="store_false",
                           help="train every run to the end (default: stop runs that fall clearly behind the kept "
                                "runs' validation curve; see kaggle_pipeline/abort.py)")
        stage.add_argument("--no-tta", dest="tta", action="store_false",
                           help="predict on the images as they are (default: a net trained with horizontal flips also "
                                "predicts on the mirror images and averages)")
        stage.add_argument("--abort-margin", type=number_in(-1, 1), default=MARGIN,
                           help="how far below the lowest kept run's validation accuracy at the same epoch a run "
                                "is stopped (default: %(default)s)")

    def submit_options(stage: argparse.ArgumentParser, threshold: bool) -> None:
        stage.add_argument("--submissions-dir", type=user_path, default=Path("submissions"), help="default: %(default)s")
        if threshold:
            stage.add_argument("--threshold", type=number_in(-1, 1_000_000),
                               help="vote the runs whose validation score reaches this (default: the ensemble's)")
        # The names live in kaggle_pipeline.vote (numpy only, cheap to import).
        from kaggle_pipeline.vote import VOTES

        stage.add_argument("--vote", choices=VOTES, default="auto",
                           help="majority, soft, weighted (by validation score), select (greedy ensemble selection), "
                                "logistic (a level-2 logistic regression on the members' probabilities) or auto: the best by the metric on the validation half none of them was fitted on "
                                "(default: %(default)s)")
        stage.add_argument("--stack-weight", type=number_in(0, 1_000_000), default=1.0,
                           help="the stacker's weight in the vote, when 'make stack' has run; 0 leaves it out "
                                "(default: %(default)s)")

    from kaggle_pipeline.metrics import METRICS

    def metric_option(stage: argparse.ArgumentParser, submit: bool = False) -> None:
        stage.add_argument("--metric", choices=("auto", *METRICS), default="auto",
                           help="what judges trials, runs (the threshold) and votes: " + ", ".join(METRICS)
                                + "; recorded in the store when it is made, later calls must agree"
                                + (" (submit may judge the vote by another)" if submit else "")
                                + " (default: auto: logloss where the sample submission asks for probabilities, "
                                  "else accuracy)")

    search = stages.add_parser("search", help="hyperopt TPE search -> models/<competition>/best_params.json")
    common(search)
    metric_option(search)
    training_options(search)
    search_options(search)
    search.add_argument("--epochs", dest="both_epochs", type=at_least(1, 100_000), help="epochs per trial (same as --search-epochs)")

    ensemble = stages.add_parser("ensemble", help="retrain with new seeds until N runs pass the threshold")
    common(ensemble)
    metric_option(ensemble)
    training_options(ensemble)
    ensemble_options(ensemble)

    stack = stages.add_parser("stack", help="VGG19 features -> RandomForest, a voter beside the kept runs -> models/<competition>/stack/")
    common(stack)
    stack.add_argument("--weights", default="imagenet",
                       help="imagenet (from the Keras cache, $KERAS_HOME/models/), none (random weights, only when asked "
                            "for) or a weights file (default: %(default)s)")
    stack.add_argument("--size", type=at_least(32, 1024), default=64, help="side the images are resized to, at least 32 (default: %(default)s)")
    stack.add_argument("--trees", type=at_least(1, 100_000), default=300, help="trees in the forest (default: %(default)s)")
    stack.add_argument("--stack-seed", type=SEED, default=0, help="seed of the forest and of random weights (default: %(default)s)")

    download = stages.add_parser("download", help="kaggle competitions (or datasets) download, unpacked into data/<slug>/")
    source = download.add_mutually_exclusive_group(required=True)
    source.add_argument("--competition", help="the competition's slug, e.g. digit-recognizer")
    source.add_argument("--dataset", metavar="OWNER/NAME",
                        help="a labelled dataset instead, e.g. paultimothymooney/chest-xray-pneumonia, unpacked into "
                             "data/<name>/ (then: data --dataset data/<name>)")
    download.add_argument("--data-root", type=user_path, default=Path("data"), help="default: %(default)s")

    submit_kaggle = stages.add_parser("submit-kaggle", help="check latest.csv, then kaggle competitions submit")
    submit_kaggle.add_argument("--competition", required=True, help="the competition's slug, e.g. digit-recognizer")
    submit_kaggle.add_argument("--message", required=True, help="the submission's description on Kaggle")
    common(submit_kaggle)
    submit_kaggle.set_defaults(data=None)  # data/<slug> unless --data is given
    submit_kaggle.add_argument("--submissions-dir", type=user_path, default=Path("submissions"), help="default: %(default)s")

    report = stages.add_parser("report", help="figures and one HTML page -> reports/<competition>/index.html")
    common(report)
    report.add_argument("--reports-dir", type=user_path, default=Path("reports"), help="default: %(default)s")
    report.add_argument("--submissions-dir", type=user_path, default=Path("submissions"), help="default: %(default)s")

    status = stages.add_parser("status", help="what is on disk: search, runs, stacker, newest submission")
    common(status)
    status.add_argument("--submissions-dir", type=user_path, default=Path("submissions"), help="default: %(default)s")

    submit = stages.add_parser("submit", help="vote over the kept runs (and the stacker) -> submissions/<competition>/latest.csv")
    common(submit)
    metric_option(submit, submit=True)
    submit_options(submit, threshold=True)

    everything = stages.add_parser("all", help="search, ensemble and submit in one go")
    common(everything)
    metric_option(everything)
    training_options(everything)
    search_options(everything)
    ensemble_options(everything)
    submit_options(everything, threshold=False)
    for stage in stages.choices.values():
        _verbosity(stage, top=False)
    return parser


def _setting(args: argparse.Namespace, key: str, preset_key: str | None = None):
    value = getattr(args, key, None)
    return PRESETS[args.preset][preset_key or key] if value is None else value


def _store_name(args: argparse.Namespace) -> str | None:
    from kaggle_pipeline.workspace import competition_name

    # Each preset keeps its own store, so a full run never mixes with (or trips over) a quick one's trials.
    if args.name is None and args.preset != "quick":
        return competition_name(args.data, None) + f"-{args.preset}"
    return None if args.name is None else competition_name(args.data, args.name)


def _workspace(args: argparse.Namespace):
    from kaggle_pipeline.workspace import open_workspace

    # submit --metric judges the vote only: the store keeps its own metric (and the threshold is in it).
    metric = None if args.stage == "submit" else getattr(args, "metric", None)
    return open_workspace(args.data, args.models_dir, name=_store_name(args), layout=args.layout,
                          validation_fraction=args.val_fraction, split_seed=args.split_seed, lock=args.stage,
                          image_size=args.image_size, skip_unreadable=args.skip_unreadable, metric=metric,
                          threshold=getattr(args, "threshold", None),
                          trains=args.stage in ("search", "ensemble", "all"),
                          subset=_setting(args, "subset") if args.stage in ("search", "all") else None,
                          outputs={"submissions_dir": args.submissions_dir} if args.stage in ("submit", "all") else None,
                          vote_metric=getattr(args, "metric", None) if args.stage == "submit" else None,
                          requires=_requires(args))


def _requires(args: argparse.Namespace):
    """The store file a stage reads first, and the command that makes it: checked before anything is written."""
    if args.stage == "ensemble":
        return attrgetter("best_params_path"), "'make search' (python -m kaggle_pipeline search)"
    if args.stage == "submit":
        return attrgetter("ensemble_path" if args.threshold is None else "runs_dir"), "'make ensemble'"
    return None


def _search(args, workspace, deadline: float | None = None) -> None:
    from kaggle_pipeline.epochs import MIN_TRIAL_STEPS
    from kaggle_pipeline.search import run_search

    epochs = getattr(args, "both_epochs", None) or _setting(args, "search_epochs")
    # The preset's epochs are raised on small data to a minimum of optimizer steps; epochs given are kept.
    fixed = getattr(args, "both_epochs", None) is not None or args.search_epochs is not None
    steps = {"min_steps": MIN_TRIAL_STEPS, "fixed_epochs": fixed}
    subset = _setting(args, "subset")
    if args.executor == "ray":
        from kaggle_pipeline.ray_search import run_tune_search

        if args.tensorboard:
            raise PipelineError("--tensorboard: not with the Ray Tune search (Tune keeps its own logs); "
                                "use it with the local search or the ensemble")
        run_tune_search(workspace, evals=_setting(args, "evals"), epochs=epochs, seed=args.search_seed,
                        space_name=_setting(args, "space"), subset=subset or None, precision=args.precision,
                        ray_address=args.ray_address, cpus_per_run=args.cpus_per_run, **steps)
        return
    run_search(workspace, evals=_setting(args, "evals"), epochs=epochs, seed=args.search_seed,
               space_name=_setting(args, "space"), subset=subset or None, precision=args.precision,
               tensorboard=args.tensorboard, deadline=deadline, **steps)


def _ensemble(args, workspace, budget=None) -> None:
    from kaggle_pipeline.ensemble import run_ensemble
    from kaggle_pipeline.epochs import min_run_steps

    hours, speed, record = _setting(args, "hours"), None, None
    if budget is not None:
        hours, speed = budget.ensemble_hours(), _search_speed(workspace.store)
        record = budget.record(hours)
        logger.info(budget.describe(hours))
    run_ensemble(workspace, n=_setting(args, "n"), threshold=args.threshold, max_runs=args.max_runs,
                 epochs=_setting(args, "epochs"), seed=args.seed, precision=args.precision,
                 abort_margin=args.abort_margin if args.early_abort else None, hours=hours,
                 images_per_second=speed, budget=record, fill_budget=budget is not None,
                 tta=args.tta, tensorboard=args.tensorboard, executor=args.executor, ray_address=args.ray_address,
                 cpus_per_run=args.cpus_per_run, min_steps=min_run_steps(workspace.competition.image_shape),
                 fixed_epochs=args.epochs is not None, folds=args.folds, recipes=_setting(args, "recipes"))


def _search_speed(store) -> float | None:
    """Training images per second of the best search trial (None if the store does not say)."""
    best, trials = store.best_params(), store.read_trials()
    if best is None or trials is None or not best.get("trial"):
        return None
    for trial in trials.records:
        if trial["tid"] == best["trial"] - 1:
            return trial["result"].get("images_per_second") or None
    return None


def _submit(args, workspace) -> None:
    from kaggle_pipeline.submit import make_submission

    make_submission(workspace, args.submissions_dir, threshold=getattr(args, "threshold", None) if args.stage == "submit" else None,
                    vote=args.vote, stack_weight=args.stack_weight,
                    metric=args.metric if args.stage == "submit" else None)


def _stack(args, workspace) -> None:
    from kaggle_pipeline.stack import run_stack

    run_stack(workspace, weights=args.weights, size=args.size, trees=args.trees, seed=args.stack_seed)


# Stages that need an optional package: (package, what to install). TensorFlow comes from the [cpu] or [gpu]
# extra, never from the base install (pyproject.toml), so a plain 'pip install .' says so here, once.
TENSORFLOW = ("tensorflow", "'kaggle-pipeline[cpu]' (or [gpu])")
NEEDS = {"search": TENSORFLOW, "ensemble": TENSORFLOW, "all": TENSORFLOW, "stack": TENSORFLOW,
         "report": ("matplotlib", "'kaggle-pipeline[report]'")}


def _check_installed(stage: str) -> None:
    package, extra = NEEDS.get(stage, (None, None))
    if package and importlib.util.find_spec(package) is None:
        raise PipelineError(f"{stage}: needs {package}, which is not installed; pip install {extra} "
                            "(make setup installs it)")


def _check_training_options(args: argparse.Namespace) -> None:
    """What argparse cannot check alone, before the data is read or anything is written."""
    if getattr(args, "precision", "auto") != "auto":
        from kaggle_pipeline.train import PRECISIONS

        if args.precision not in PRECISIONS:
            raise PipelineError(f"--precision {args.precision} (PRECISION=): choose one of {', '.join(PRECISIONS)}")
    if getattr(args, "weights", None) not in (None, "imagenet", "none"):
        from kaggle_pipeline.stack import weights_path_for

        weights_path_for(args.weights)


def _data(args: argparse.Namespace) -> None:
    if args.dataset is None:
        from kaggle_pipeline.data import DEBIAN_FASHION_MNIST, prepare_fashion_mnist

        for name in ("test_fraction", "label_column"):
            if getattr(args, name) is not None:
                raise ParameterError(name, getattr(args, name), "only with --dataset")
        out = args.out or DEFAULT_DATA
        made = prepare_fashion_mnist(out, args.source or DEBIAN_FASHION_MNIST)
        logger.info(f"data: {'wrote' if made else 'already prepared:'} {out} (train.csv, test.csv, sample_submission.csv, solution.csv)")
        return
    from kaggle_pipeline.data.dataset import DEFAULT_TEST_FRACTION, prepare_dataset

    if args.source is not None:
        raise ParameterError("source", str(args.source), "the Fashion-MNIST source; not with --dataset")
    dataset, unpacked, data_root_made = args.dataset, False, not os.path.lexists("data")
    try:
        if os.path.isfile(dataset):  # the archive.zip Kaggle's site downloads: unpacked into data/<its name>
            import zipfile

            from kaggle_pipeline.kaggle_client import unpack_site_download

            if not zipfile.is_zipfile(dataset):
                raise PipelineError(f"{dataset}: neither a folder nor a zip archive; expected the dataset's folder "
                                    "(or the .zip Kaggle's site downloads)")
            dataset = Path("data") / Path(dataset).stem
            unpacked = unpack_site_download(args.dataset, dataset)
        name = Path(os.path.realpath(dataset)).name
        out = args.out or Path("data") / name
        if args.out is None and os.path.realpath(out) == os.path.realpath(dataset):  # a dataset kept in data/<name>
            out = Path("data") / f"{name}-competition"
        made = prepare_dataset(dataset, out, args.test_fraction or DEFAULT_TEST_FRACTION,
                               label_column=args.label_column)
    except BaseException:
        # A dataset that cannot be a competition leaves nothing behind: its unpacked files, the data folder neither.
        if unpacked:
            shutil.rmtree(dataset, ignore_errors=True)
        if data_root_made and os.path.isdir("data") and not os.listdir("data"):
            os.rmdir("data")
        raise
    if unpacked:
        logger.info(f"data: unpacked {args.dataset} into {dataset}")
    logger.info(f"data: {'wrote' if made else 'already prepared:'} {out} from {dataset} (its training and test "
                f"images, sample_submission.csv, solution.csv); next: make all DATA={out}")


def run(args: argparse.Namespace) -> None:
    _check_installed(args.stage)
    if args.stage == "data":
        _data(args)
        return
    if args.stage == "download":
        from kaggle_pipeline.kaggle_client import download, download_dataset

        if args.dataset is not None:
            download_dataset(args.dataset, args.data_root)
        else:
            download(args.competition, args.data_root)
        return
    if args.stage == "submit-kaggle":
        from kaggle_pipeline.data import load_competition
        from kaggle_pipeline.kaggle_client import submit_to_kaggle
        from kaggle_pipeline.store import RunStore, SubmissionStore
        from kaggle_pipeline.workspace import competition_name, recorded_skip_unreadable

        args.data = args.data or Path("data") / args.competition
        name = competition_name(args.data, _store_name(args))
        submissions = SubmissionStore(args.submissions_dir, name)
        submission = submissions.latest_csv
        if not submission.is_file():
            raise PipelineError(f"{submission}: not found; run 'make submit DATA={args.data}' first")
        skip_unreadable = args.skip_unreadable or recorded_skip_unreadable(RunStore(args.models_dir / name))
        competition = load_competition(args.data, name=name, layout=args.layout, image_size=args.image_size,
                                       skip_unreadable=skip_unreadable)
        summary = submissions.latest()  # says the format (a probability, or a label)
        submission_format = None if summary is None else summary.format
        submit_to_kaggle(args.competition, competition, submission, args.message, submission_format)
        return
    if args.stage == "report":
        from kaggle_pipeline.report import make_report
        from kaggle_pipeline.workspace import open_workspace

        # No lock: a report of a store that an ensemble is still writing is what a watching user wants.
        workspace = open_workspace(args.data, args.models_dir, name=_store_name(args), layout=args.layout,
                                   read_only=True, image_size=args.image_size, skip_unreadable=args.skip_unreadable,
                                   outputs={"reports_dir": args.reports_dir})
        make_report(workspace, args.reports_dir, args.submissions_dir)
        return
    if args.stage == "status":
        from kaggle_pipeline.status import status_lines
        from kaggle_pipeline.store import RunStore
        from kaggle_pipeline.workspace import competition_name

        store = RunStore(args.models_dir / competition_name(args.data, _store_name(args)))
        print("\n".join(status_lines(store, args.submissions_dir)))
        return
    if getattr(args, "tensorboard", False) and importlib.util.find_spec("tensorboard") is None:
        # Otherwise every run would fail in its first epoch and be recorded as a failed attempt.
        raise PipelineError("--tensorboard (TENSORBOARD=1): the tensorboard package is not installed; "
                            "pip install 'kaggle-pipeline[report]' (make setup installs it)")
    _check_training_options(args)
    # all --hours (HOURS=, or the preset's) is the whole job's budget, split between search and runs as it goes.
    budget = None
    if args.stage == "all" and _setting(args, "hours") is not None:
        from kaggle_pipeline.budget import JobBudget

        budget = JobBudget(_setting(args, "hours"))
    workspace = _workspace(args)
    with workspace.lock:
        if args.stage in ("ensemble", "all"):
            from kaggle_pipeline.ensemble import store_folds

            store_folds(workspace, args.folds)  # another K than the store's: refused before the search writes
        if args.stage in ("search", "all"):
            _search(args, workspace, deadline=None if budget is None else budget.search_deadline())
            if budget is not None:
                budget.search_finished()
        if args.stage in ("ensemble", "all"):
            _ensemble(args, workspace, budget)
        if args.stage == "stack":
            _stack(args, workspace)
        if args.stage in ("submit", "all"):
            _submit(args, workspace)


# Library parameters (ParameterError) -> the option and make variable a command-line user typed.
OPTIONS = {
    "n": ("--n", "N"), "folds": ("--folds", "FOLDS"), "recipes": ("--recipes", "RECIPES"), "threshold": ("--threshold", "THRESHOLD"), "max_runs": ("--max-runs", "MAX_RUNS"),
    "hours": ("--hours", "HOURS"), "evals": ("--evals", "EVALS"), "subset": ("--subset", None),
    "precision": ("--precision", "PRECISION"), "executor": ("--executor", "EXECUTOR"), "vote": ("--vote", "VOTE"), "metric": ("--metric", "METRIC"),
    "stack_weight": ("--stack-weight", "STACK_WEIGHT"), "size": ("--size", "STACK_SIZE"), "image_size": ("--image-size", "SIZE"), "layout": ("--layout", None),
    "validation_fraction": ("--val-fraction", None), "split_seed": ("--split-seed", None),
    "name": ("--name", "NAME"), "data_dir": ("--data", "DATA"), "ray_address": ("--ray-address", "RAY_ADDRESS"),
}


def option_message(error: ParameterError, stage: str) -> str:
    """A library error in the command line's words: the option (and make variable) instead of the parameter."""
    if error.parameter == "epochs":
        option, variable = ("--search-epochs" if stage == "search" else "--epochs"), "EPOCHS"
    else:
        option, variable = OPTIONS.get(error.parameter, (f"--{error.parameter.replace('_', '-')}", None))
    return f"{option} {error.value!r}{f' ({variable}=)' if variable else ''}: {error.requirement}"


def _verbosity(parser: argparse.ArgumentParser, top: bool) -> None:
    # On the main parser and on every stage, so both 'kaggle-pipeline -q search' and '... search -q' work;
    # SUPPRESS keeps a stage's default from overwriting what was given before the stage's name.
    default = 0 if top else argparse.SUPPRESS
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=default,
                       help="only warnings and errors (make: VERBOSE=0)")
    group.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1, default=default,
                       help="also debug detail, e.g. every epoch's line in a log (make: VERBOSE=2)")


LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}
# How long the data loader's lines may be held back (HeldDataLines): a load that runs longer shows its progress.
HOLD_SECONDS = 3.0


class HeldDataLines(logging.Handler):
    """Passes every record on to ``target``, but holds the data loader's info and warning lines (left-out files,
    16-bit ranges, loading progress, the unreadable images --skip-unreadable left out) until the stage goes on:
    a line of another logger, or the first held line being HOLD_SECONDS old, passes them on in order
    (``pass_on``; ``release`` is logging's lock). A stage refused once the data has loaded (submit before
    ensemble, a broken answer key) then prints its one error line alone: ``drop`` forgets what was held."""

    def __init__(self, target: logging.Handler):
        super().__init__()
        self.target = target
        self.held: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("kaggle_pipeline.data") and record.levelno <= logging.WARNING:
            self.held.append(record)
            if record.created - self.held[0].created < HOLD_SECONDS:
                return
            self.pass_on()
            return
        self.pass_on()
        self.target.handle(record)

    def pass_on(self) -> None:
        held, self.held = self.held, []
        for record in held:
            self.target.handle(record)

    def drop(self) -> None:
        self.held = []


def _log_to_stderr(verbosity: int) -> tuple[logging.Logger, HeldDataLines, int, bool]:
    """The command line's one handler on the package's logger: plain lines on stderr, as progress always was."""
    package = logging.getLogger("kaggle_pipeline")
    lines = logging.StreamHandler(sys.stderr)
    lines.setFormatter(logging.Formatter("%(message)s"))
    handler = HeldDataLines(lines)
    saved = package, handler, package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(LEVELS[verbosity])
    package.propagate = False  # a root handler (TensorFlow's absl installs one) would print every line twice
    return saved


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    install_stop_handlers()
    package, handler, level, propagate = _log_to_stderr(getattr(args, "verbosity", 0))
    # Pillow logs an error about a damaged TIFF ("More samples per pixel than can be decoded") and then raises,
    # which is the file's one line; with no handler of its own, Python's last resort would print both.
    pillow = logging.getLogger("PIL")
    pillow_level = pillow.level
    pillow.setLevel(logging.CRITICAL)
    try:
        run(args)
    except ParameterError as error:
        handler.drop()
        print(f"error: {option_message(error, args.stage)}", file=sys.stderr)
        return 2
    except PipelineError as error:
        handler.drop()
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        handler.pass_on()
        print("interrupted: finished trials and runs are saved; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        # Called in-process (tests, a notebook), main leaves logging as it found it.
        handler.pass_on()
        package.removeHandler(handler)
        package.setLevel(level)
        package.propagate = propagate
        pillow.setLevel(pillow_level)
    return 0
