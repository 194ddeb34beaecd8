"""Accuracy per CPU-hour, side by side: the reference recipe against the pipeline as a user runs it (issue 15).

    .venv/bin/python bench/budget.py --smoke     # checks this script: tiny data, 1-epoch runs, 1-3 minutes
    .venv/bin/python bench/budget.py --small     # 12k images, budgets 5/10/20/30 minutes per side: 2 x 30 min + set-up
    .venv/bin/python bench/budget.py             # the full setting: 60k images, up to the reference's 30 runs (<= 2 x 14 h)

Same machine, same data folder (hence the same validation split), same held-out answer key:

(a) reference: the write-up's recipe (ensemble_speed.reference_run: the reference net, plain ``model.fit`` on
    float32 arrays, batch 128, ReduceLROnPlateau, a fixed number of epochs), new seeds one after another until
    its kept runs (validation accuracy >= the threshold of ensemble_speed.SETTINGS) reach the write-up's count
    or the largest budget is spent. Its ensemble at a budget: the majority vote of the runs kept by then.
(b) ours: ``python -m kaggle_pipeline all`` with the preset (quick for --small, full for the full setting) and
    ``--n 1000``, so that it keeps adding runs until the largest budget is spent, when it gets SIGINT (the way a
    user stops it). The search counts against the budget, and so do Python's start, TensorFlow's import and the
    data loading (they count for the reference too). Its ensemble at a budget: the kept runs finished by then
    (the store's run.json files, read with submit.stored_predictions), voted as the submit stage votes by
    default (VotingEnsemble(strategy="auto"): majority, soft, weighted or select, picked on half the
    validation split); the majority vote of the same runs is in the JSON too.

Interleaving. This VM's speed drifts, and it sometimes gives a process one core instead of two, so the sides are
not run one after the other: both are child processes (each in its own process group), and the bench runs
them in turns of --chunk seconds (60 s with --small), the other one stopped with SIGSTOP meanwhile, so only one
trains at a time and a slow stretch of the machine falls on both sides alike. Each side's clock is the sum of
its own turns; a run's finish time (when its record is written: run.json's mtime for ours, the worker's note
for the reference) is converted from wall time to its side's clock. --rounds N repeats the whole measurement
with new seeds (round 1 uses the defaults, round k seeds 1000*k), the side that starts alternating, and reports
each round and the spread; --first-round K starts at round K, so a later session can add a round to a --work.

Sessions shorter than a measurement (the full setting's 2 x 14 hours). While the file <work>/HOLD exists, the bench
ends the current turn and keeps both sides stopped, their clocks not running, so that other work can have the
machine; removing it goes on. A killed bench (or a rebooted machine) goes on with ``--resume`` and the same
arguments: the clocks and turns are in round-N/turns.json, written as each turn starts and ends; each side restarts where its
files say (the pipeline resumes its store; the reference worker goes on after the last run in runs.jsonl), and its
clock is cut back to the wall time of its last work on disk, so the run the kill cut short is redone and not
counted twice. A side finished before the kill stays finished; a finished round is read from its result.json. The
sides die with the bench (PR_SET_PDEATHSIG), so a killed bench leaves nothing training; one bench at a time holds
a --work (<work>/.lock), so a --resume beside a held bench is refused.

A measurement longer than a machine's life. A session may get a new machine, its disk gone; with ``--snapshot DIR``
the bench copies each round to DIR at every hold and at the round's end (``--export`` does it after a kill): each
side's clock, the reference's runs and our store, without its data cache and model files, so that DIR is a few
megabytes per hour of bench and can be committed. ``--resume --snapshot DIR`` on a machine that has none of the
round lays it out as a held bench leaves it and goes on. DIR holds one folder per kind of machine (CPU model, cores,
the precision the pipeline picks there), since the sides' relative speed depends on it (from the development CPU,
with bfloat16, to an AMD EPYC without: ours' wide net 4-6 times slower, the reference's float32 net 2-2.7 times): a
round goes on only on the kind it started on, and a session handed another kind goes on with that kind's round,
or starts it. The full setting runs as

    .venv/bin/python bench/budget.py --work models/bench-budget-full --snapshot bench/budget-full --resume \
        --out docs/budget.json --plot docs/budget_curve.png     # the same command starts it and goes on with it
    touch models/bench-budget-full/HOLD                          # before a session stops; then commit bench/budget-full

For each budget it prints both sides' voted accuracy on the answer key, and the time ours needs to reach the
reference's final accuracy (its vote at the largest budget), at run granularity: the finish time of the first
kept run after which our vote is at least that accuracy, against the finish time of the reference's last
kept run. Writes the numbers to --out (JSON) and accuracy against minutes, both sides, to --plot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# bench/ is sys.path[0] when this runs as `python bench/budget.py`.
from ensemble_speed import SETTINGS as REFERENCE_SETTINGS
from ensemble_speed import reference_run, say

from kaggle_pipeline.cli import PRESETS
from kaggle_pipeline.data import answer_key_labels
from kaggle_pipeline.data.fashion_mnist import PREPARED_MARKER, fashion_mnist_arrays, write_pixel_competition
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.estimator import VotingEnsemble
from kaggle_pipeline.progress import format_seconds
from kaggle_pipeline.store import (
    Run,
    RunStore,
    StoreLock,
    atomic_write_json,
    atomic_write_text,
    library_versions,
    record_digest,
)
from kaggle_pipeline.submit import stored_predictions
from kaggle_pipeline.train import choose_precision
from kaggle_pipeline.vote import accuracy, majority_vote
from kaggle_pipeline.workspace import open_workspace


def _reference(setting: str) -> dict:
    """The reference's data, threshold and epochs, as ensemble_speed measured them."""
    chosen = REFERENCE_SETTINGS[setting]
    return {"images": chosen["images"], "threshold": chosen["threshold"], "reference_epochs": chosen["reference_epochs"]}


SETTINGS = {
    # The write-up's scale: all 60k images, 40 epochs a run, 30 kept runs over 91% (25 minutes a run on the
    # development CPU, so ~12.5 hours; the last budget leaves 1.5 hours' margin; about 50 minutes a run on a CPU
    # without bfloat16), against the full preset with runs until the last budget.
    "full": {**_reference("full"), "reference_runs": REFERENCE_SETTINGS["full"]["runs"], "preset": "full", "n": 1000,
             "budgets": [30, 60, 120, 240, 480, 840], "chunk": 300, "pipeline_args": []},
    # 12k images (a reference run takes about 3 minutes here): 2 x 30 minutes plus set-up.
    "small": {**_reference("small"), "reference_runs": 0, "preset": "quick", "n": 1000,
              "budgets": [5, 10, 20, 30], "chunk": 60, "pipeline_args": []},
    # Checks the script, measures nothing: 2,000 images, 1-epoch runs, at most 2 kept runs a side.
    "smoke": {"images": 2000, "threshold": 0.1, "reference_epochs": 1, "reference_runs": 2, "preset": "quick", "n": 2,
              "budgets": [0.75, 1.5], "chunk": 20,
              "pipeline_args": ["--evals", "1", "--search-epochs", "1", "--epochs", "1", "--threshold", "0.1"]},
}


# The data --------------------------------------------------------------------------------------------------
def competition_folder(work: Path, images: int) -> Path:
    """The default competition with its first ``images`` training images (0: all) and the whole test set with
    its answer key, written once under ``work`` (both sides read this folder)."""
    folder = work / f"fashion-mnist-{images or 'all'}"
    if (folder / PREPARED_MARKER).exists():
        return folder
    arrays = fashion_mnist_arrays()
    count = images or len(arrays["y_train"])
    say(f"budget: writing {folder} ({count:,} training images, {len(arrays['y_test']):,} test images with answer key)")
    write_pixel_competition(folder, arrays["x_train"][:count], arrays["y_train"][:count], arrays["x_test"], arrays["y_test"],
                            marker={"source": "bench/budget.py", "train_images": count, "test_images": len(arrays["y_test"])})
    return folder


# (a) the reference side, as a child process -----------------------------------------------------------------
def reference_worker(args: argparse.Namespace) -> None:
    """Train reference runs with seeds seed+1, seed+2, ... until ``--runs`` are kept (0: until stopped); after
    each, save its predictions and append a line to runs.jsonl (its finish time is wall-clock). SIGINT (the
    budget spent) ends it quietly; the run under way is not counted."""
    # The runs' epoch lines (train.EpochProgress: one every 90 s off a terminal) go to the side's log, as the
    # command line shows ours'; the package logs nothing until a handler is set.
    package = logging.getLogger("kaggle_pipeline")
    lines = logging.StreamHandler(sys.stderr)
    lines.setFormatter(logging.Formatter("%(message)s"))
    package.addHandler(lines)
    package.setLevel(logging.INFO)
    package.propagate = False
    try:
        _reference_runs(args)
    except KeyboardInterrupt:
        say("reference: stopped (budget spent)")
        sys.exit(130)


def finished_reference_runs(folder: Path) -> list[dict]:
    """runs.jsonl's records; a last line cut short by a kill is not a run (it is redone)."""
    path = folder / "runs.jsonl"
    runs = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return runs


def _reference_runs(args: argparse.Namespace) -> None:
    folder = args.work
    folder.mkdir(parents=True, exist_ok=True)
    # Resumed (bench/budget.py --resume): go on after the last run recorded, with the seeds a fresh start would use.
    done = finished_reference_runs(folder)
    atomic_write_text(folder / "runs.jsonl", "".join(json.dumps(run) + "\n" for run in done))
    kept = sum(run["validation_accuracy"] >= args.threshold for run in done)
    workspace = open_workspace(args.data, folder / "models")
    data = (workspace.x_train, workspace.y_train, workspace.x_validation, workspace.y_validation,
            workspace.competition.x_test, workspace.competition.num_classes)
    for number in range(len(done) + 1, 100_000):
        if args.runs and kept >= args.runs:
            break
        run = reference_run(*data, args.seed + number, args.epochs)
        np.save(folder / f"run-{number:04d}-test.npy", run["test"])
        kept += run["validation_accuracy"] >= args.threshold
        with open(folder / "runs.jsonl", "a") as handle:
            # Its seconds are wall time, turns of the other side included: the parent uses the finish time.
            handle.write(json.dumps({"run": number, "seed": run["seed"], "finished": time.time(),
                                     "validation_accuracy": run["validation_accuracy"]}) + "\n")
        say(f"reference: seed {run['seed']} val_acc {run['validation_accuracy']:.4f} "
            f"{'kept' if run['validation_accuracy'] >= args.threshold else 'rejected'}  kept {kept}")


# Turns --------------------------------------------------------------------------------------------------------
def child_setup() -> None:
    """In a child, before it runs: SIGKILL it when the bench dies, so that a killed bench leaves no side training
    unwatched (each side is in its own session, out of reach of a signal to the bench's); and SIGINT as a
    terminal gives it, which a bench started in the background (``nohup ... &``) would pass on ignored."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Side:
    """One side's child process, run in turns; its clock is the sum of its turns."""

    def __init__(self, name: str, command: list[str], log: Path):
        self.name, self.command, self.log = name, command, log
        self.process: subprocess.Popen | None = None
        self.turns: list[tuple[float, float]] = []
        self.turn_started: float | None = None  # the turn under way, saved so that a kill in it is not free time
        self.stopped_by_budget = False
        self.finished = False  # a resumed side that had finished before (its process was another bench's child)
        self.returncode: int | None = None
        self._shown = 0

    def clock(self, wall: float | None = None) -> float:
        """Seconds this side has run, up to ``wall`` (default: so far)."""
        wall = time.time() if wall is None else wall
        return sum(max(0.0, min(end, wall) - start) for start, end in self.turns if start < wall)

    @property
    def done(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            self.finished, self.returncode = True, self.process.returncode
        return self.finished

    def resume(self) -> None:
        if self.process is None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self._shown = len(self.log.read_text(errors="replace")) if self.log.exists() else 0
            handle = open(self.log, "a")  # a resumed round's log goes on
            self.process = subprocess.Popen(self.command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=child_setup)
            handle.close()
        else:
            os.killpg(self.process.pid, signal.SIGCONT)

    def pause(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def stop(self, grace: float = 120.0) -> None:
        """SIGINT, as a user stops the pipeline, and wait for it to clean up (not counted: past the budget)."""
        self.stopped_by_budget = True
        self.process.send_signal(signal.SIGINT)
        os.killpg(self.process.pid, signal.SIGCONT)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def show_new_lines(self) -> None:
        """Pass on the child's new log lines (its progress), prefixed with the side's name."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return
        lines = text[self._shown:].splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines.pop()
        for line in lines:
            self._shown += len(line)
            if line.strip() and "WARNING: All log messages before absl" not in line:
                say(f"  [{self.name}] {line.rstrip()}")

    # The round's state file, so that a killed bench resumes (--resume) ------------------------------------
    def state(self) -> dict:
        return {"command": self.command, "turns": self.turns, "turn_started": self.turn_started, "finished": self.done,
                "returncode": self.returncode, "stopped_by_budget": self.stopped_by_budget}

    def restore(self, state: dict, durable: float | None) -> None:
        """Take a killed bench's record of this side. The turn the kill cut short counts up to ``durable`` (wall
        time of the last work on disk), and so does the whole clock: the side redoes what came after, so that time
        is not counted twice, and work it kept from that turn is not free. A finished side keeps its clock."""
        if state["command"] != self.command:
            raise SystemExit(f"{self.log.parent}: its {self.name} side ran another command; use another --work")
        self.turns = [tuple(turn) for turn in state["turns"]]
        if state.get("turn_started") is not None:  # absent in states saved before 2026-12-07's last commits
            self.turns.append((state["turn_started"], float("inf")))
        self.finished, self.returncode = state["finished"], state["returncode"]
        self.stopped_by_budget = state["stopped_by_budget"]
        if not self.finished:
            cut = durable if durable is not None else -1.0
            self.turns = [(start, min(end, cut)) for start, end in self.turns if start < cut]


def run_in_turns(sides: list[Side], budget_seconds: float, chunk: float, save, hold: Path, on_hold=None) -> None:
    """Give each unfinished side a turn of ``chunk`` seconds in order until each has finished or used the budget.
    ``save(sides)`` records the state at the start and end of every turn. While the file ``hold`` exists the current turn ends
    and both sides stay stopped, their clocks not running (a session's end: another job can have the machine);
    ``on_hold()`` runs once they are (the snapshot)."""
    started = time.time()
    while not all(side.done for side in sides):
        for side in sides:
            if side.done:
                continue
            side.resume()
            begin = side.turn_started = time.time()
            save(sides)
            end = begin + min(chunk, budget_seconds - side.clock())
            while time.time() < end and side.process.poll() is None and not hold.exists():
                time.sleep(0.2)
            side.turns.append((begin, time.time()))
            side.turn_started = None
            if side.process.poll() is None:
                if side.clock() >= budget_seconds:
                    side.stop()
                else:
                    side.pause()
            save(sides)
            side.show_new_lines()
            left = sum(max(0.0, budget_seconds - other.clock()) for other in sides if not other.done)
            say(f"budget: {side.name} {format_seconds(side.clock())} of {format_seconds(budget_seconds)}  "
                f"(wall {format_seconds(time.time() - started)}, ETA {format_seconds(left)})")
            if side.done and side.returncode not in (0,) and not side.stopped_by_budget:
                say(f"budget: {side.name} exited with status {side.returncode}; see {side.log}")
            if hold.exists():
                if on_hold is not None:
                    on_hold()
                say(f"budget: held while {hold} exists (remove it to go on)")
                while hold.exists():
                    time.sleep(1.0)
                say("budget: going on")


# Scoring ------------------------------------------------------------------------------------------------------
def reference_points(side: Side, folder: Path, threshold: float, truth: np.ndarray) -> tuple[list[dict], list[dict]]:
    """(every finished run, the vote after each kept run): majority of the kept runs so far."""
    runs, points, tests = [], [], []
    for run in finished_reference_runs(folder):
        run["minutes"] = side.clock(run.pop("finished")) / 60
        run["kept"] = run["validation_accuracy"] >= threshold
        runs.append(run)
        if run["kept"]:
            tests.append(np.load(folder / f"run-{run['run']:04d}-test.npy"))
            points.append({"minutes": run["minutes"], "runs": len(tests),
                           "accuracy": accuracy(majority_vote(np.stack(tests)), truth)})
    return runs, points


def our_points(side: Side, data: Path, models: Path, truth: np.ndarray) -> tuple[list[dict], list[dict]]:
    """(every finished run, the vote after each kept run): the submit stage's auto vote of the kept runs so far,
    and their majority vote."""
    stores = sorted(path.name for path in models.iterdir() if path.is_dir()) if models.is_dir() else []
    if not stores:
        return [], []
    workspace = open_workspace(data, models, name=stores[0], read_only=True)
    runs = []
    for record in workspace.store.run_records(repair=False):
        finished = workspace.store.run_record_path(record).stat().st_mtime
        runs.append({"run": record["run"], "seed": record["seed"], "status": record["status"],
                     "validation_accuracy": record["validation_accuracy"], "minutes": side.clock(finished) / 60})
    try:
        members = stored_predictions(workspace)
    except PipelineError as error:  # stopped before a run was kept
        say(f"budget: ours has no kept run ({error})")
        return runs, []
    minutes = {run["run"]: run["minutes"] for run in runs}
    points = []
    for count, record in enumerate(members.records, start=1):
        ensemble = VotingEnsemble(strategy="auto", weights=members.weights[:count]).fit(
            members.validation[:, :count], members.y)
        points.append({"minutes": minutes[record["run"]], "runs": count, "vote": ensemble.strategy_,
                       "accuracy": accuracy(ensemble.predict(members.test[:, :count]), truth),
                       "majority_accuracy": accuracy(majority_vote(members.test[:, :count].transpose(1, 0, 2)), truth)})
    for run in runs:
        run["kept"] = any(record["run"] == run["run"] for record in members.records)
    return runs, points


def at(points: list[dict], minutes: float) -> dict | None:
    """The last vote reached within ``minutes``."""
    reached = [point for point in points if point["minutes"] <= minutes]
    return reached[-1] if reached else None


def score_round(reference: list[dict], ours: list[dict], budgets: list[float]) -> dict:
    table = []
    for budget in budgets:
        ref, our = at(reference, budget), at(ours, budget)
        table.append({"minutes": budget, "reference": ref and round(ref["accuracy"], 4), "reference_runs": ref and ref["runs"],
                      "ours": our and round(our["accuracy"], 4), "ours_runs": our and our["runs"],
                      "ours_vote": our and our["vote"],
                      "difference": None if ref is None or our is None else round(our["accuracy"] - ref["accuracy"], 4)})
    final = at(reference, budgets[-1])
    result = {"table": table, "reference_final": None, "reference_final_minutes": None, "ours_minutes_to_reference_final": None,
              "time_ratio": None}
    if final is not None:
        result["reference_final"] = round(final["accuracy"], 4)
        result["reference_final_minutes"] = round(final["minutes"], 2)
        reach = next((point for point in ours if point["accuracy"] >= final["accuracy"]), None)
        if reach is not None:
            result["ours_minutes_to_reference_final"] = round(reach["minutes"], 2)
            result["time_ratio"] = round(final["minutes"] / reach["minutes"], 2)
    return result


def print_round(number: int, scored: dict, final: str = "final accuracy") -> None:
    print(f"\nround {number}")
    print(f"{'minutes':>7} | {'reference (runs)':>16} | {'ours (runs, vote)':>26} | {'difference':>10}")
    for row in scored["table"]:
        ref = "-" if row["reference"] is None else f"{row['reference']:.4f} ({row['reference_runs']})"
        our = "-" if row["ours"] is None else f"{row['ours']:.4f} ({row['ours_runs']}, {row['ours_vote']})"
        difference = "-" if row["difference"] is None else f"{100 * row['difference']:+.2f} pt"
        print(f"{row['minutes']:7g} | {ref:>16} | {our:>26} | {difference:>10}")
    if scored["reference_final"] is None:
        print("the reference kept no run within the budget")
    elif scored["ours_minutes_to_reference_final"] is None:
        print(f"ours never reached the reference's {final} {scored['reference_final']:.4f} "
              f"(reached at {scored['reference_final_minutes']:.1f} min)")
    else:
        print(f"ours reached the reference's {final} {scored['reference_final']:.4f} at "
              f"{scored['ours_minutes_to_reference_final']:.1f} min; the reference at {scored['reference_final_minutes']:.1f} min "
              f"({scored['time_ratio']:.2f}x)")


# One round ----------------------------------------------------------------------------------------------------
def round_sides(number: int, settings: dict, data: Path, folder: Path) -> tuple[Side, Side]:
    """The reference's worker and our pipeline for round ``number``: round 1 the default seeds, round k 1000*k."""
    seed = 1000 * number if number > 1 else 0
    reference = Side("reference", [sys.executable, str(Path(__file__).resolve()), "--reference-worker", "--data", str(data),
                                   "--work", str(folder / "reference"), "--epochs", str(settings["reference_epochs"]),
                                   "--threshold", str(settings["threshold"]), "--runs", str(settings["reference_runs"]),
                                   "--seed", str(seed)],
                     folder / "reference.log")
    seeds = [] if number == 1 else ["--seed", str(1000 * number), "--search-seed", str(number)]
    ours = Side("ours", [sys.executable, "-m", "kaggle_pipeline", "all", "--data", str(data),
                         "--models-dir", str(folder / "ours" / "models"), "--submissions-dir", str(folder / "ours" / "submissions"),
                         "--preset", settings["preset"], "--n", str(settings["n"]), *seeds,
                         *without_time_budget(settings["preset"]), *settings["pipeline_args"]],
                folder / "ours.log")
    return reference, ours


def measure_round(number: int, settings: dict, data: Path, work: Path, truth: np.ndarray, resume: bool,
                  snapshot: Path | None = None) -> dict:
    """One round, or with ``resume`` the rest of one a killed bench left (its result once it is finished), taken
    from ``snapshot`` where this machine has none of it. With ``snapshot`` the round is copied there at each hold
    and at its end."""
    folder = work / f"round-{number}"
    state_path = folder / "turns.json"
    if resume and snapshot is not None and not state_path.exists() and (snapshot / folder.name / SNAPSHOT_STATE).exists():
        if folder.exists() and any(folder.iterdir()):
            raise SystemExit(f"{folder}: holds files but no turns.json; remove it to resume from {snapshot / folder.name}")
        try:
            import_snapshot(snapshot / folder.name, folder, settings, round_sides(number, settings, data, folder))
        except (OSError, KeyError, ValueError) as error:  # a damaged or hand-edited snapshot: one line, no traceback
            raise SystemExit(f"{snapshot / folder.name}: cannot be resumed from ({type(error).__name__}: {error}); "
                             f"remove {folder} and restore the snapshot (git checkout)") from None
    resuming = resume and state_path.exists()
    if not resuming and folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"{folder}: exists and is not empty; use another --work or remove it"
                         + ("" if resume else ", or --resume to go on with it"))
    if resuming:
        state = json.loads(state_path.read_text())
        if state["settings"] != settings:
            raise SystemExit(f"{state_path}: measured with other settings ({state['settings']}); use another --work")
        if (folder / "result.json").exists():
            say(f"budget: round {number} was finished: {folder / 'result.json'}")
            return json.loads((folder / "result.json").read_text())
    reference, ours = round_sides(number, settings, data, folder)
    order = [reference, ours] if number % 2 else [ours, reference]
    if resuming:
        reference.restore(state["sides"]["reference"], last_reference_work(folder / "reference"))
        ours.restore(state["sides"]["ours"], last_store_write(folder / "ours" / "models"))
        say(f"budget: round {number} resumed: reference {format_seconds(reference.clock())}, ours "
            f"{format_seconds(ours.clock())} of their clocks kept (work lost in the kill is redone)")

    def save(sides: list[Side]) -> None:
        atomic_write_json(state_path, {"settings": settings, "sides": {side.name: side.state() for side in sides}})

    say(f"budget: round {number}: {' then '.join(side.name for side in order)} in turns of {settings['chunk']} s, "
        f"up to {settings['budgets'][-1]:g} minutes each")
    def on_hold() -> None:
        if snapshot is not None:
            export_snapshot(folder, settings, data, snapshot)

    run_in_turns(order, settings["budgets"][-1] * 60, settings["chunk"], save, work / "HOLD", on_hold)
    reference_runs, reference_curve = reference_points(reference, folder / "reference", settings["threshold"], truth)
    our_runs, our_curve = our_points(ours, data, folder / "ours" / "models", truth)
    scored = score_round(reference_curve, our_curve, settings["budgets"])
    print_round(number, scored)
    result = {"round": number, "first": order[0].name, "seconds_run": {side.name: round(side.clock(), 1) for side in order},
              "exit_status": {side.name: side.returncode for side in order},
              "reference": {"runs": rounded(reference_runs), "curve": rounded(reference_curve)},
              "ours": {"runs": rounded(our_runs), "curve": rounded(our_curve), "command": ours.command},
              **scored}
    atomic_write_json(folder / "result.json", result)
    if snapshot is not None:
        export_snapshot(folder, settings, data, snapshot)
    return result


def last_reference_work(folder: Path) -> float | None:
    """Wall time of the reference side's last finished run (what a resumed worker goes on from)."""
    runs = finished_reference_runs(folder)
    return max((run["finished"] for run in runs), default=None)


def last_store_write(models: Path) -> float | None:
    """Wall time of the newest file in our store: a resumed ``kaggle_pipeline all`` goes on from what is on disk
    (search trials, finished runs). Hidden files are the lock and temporary files, not work."""
    return max((path.stat().st_mtime for path in _store_files(models, whole=True)), default=None)


# Snapshots: a measurement that outlives its machine -------------------------------------------------------------
# A session's machine may be a new one (its disk and processes gone), and the full setting takes many sessions.
# A snapshot is what a round needs to go on anywhere, small enough to commit: the turns reduced to each side's
# clock, the reference's runs, and our store without what the pipeline remakes (its data cache) or the bench never
# reads (model files: 8.8 MB a run of the full preset; the vote reads predictions). Times in it are seconds of
# each side's clock, not wall time, so that a machine with another clock can take it.
SNAPSHOT_STATE = "state.json"


def this_machine() -> dict:
    """What decides the two sides' relative speed: the CPU, its cores and the precision the pipeline picks on it."""
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    return {"cpu": model, "cores": os.cpu_count(), "precision": choose_precision("auto", gpus=[])}


def machine_key(machine: dict) -> str:
    """The snapshot's folder for a kind of machine: a round goes on only on the kind it started on."""
    return "-".join([re.sub(r"[^a-z0-9]+", "-", machine["cpu"].lower()).strip("-"), f"{machine['cores']}cores",
                     machine["precision"].removeprefix("mixed_")])


def _store_files(models: Path, whole: bool = False) -> list[Path]:
    """Our store's files, not hidden ones (locks, unfinished runs); unless ``whole``, without the data cache and
    the model files either (what a snapshot keeps)."""
    kept = []
    for path in sorted(models.rglob("*")):
        parts = path.relative_to(models).parts
        if (path.is_file() and not path.is_symlink() and not any(part.startswith(".") for part in parts)
                and (whole or ("cache" not in parts[1:2] and path.name != Run.MODEL))):
            kept.append(path)
    return kept


def _without_model(record: dict) -> dict:
    """A run record as the pipeline writes one for a run that kept no model file (its checksum made anew): the
    pipeline goes on with it and votes with its predictions."""
    record = {**record, "files": {name: digest for name, digest in record.get("files", {}).items() if name != Run.MODEL}}
    if "record_sha256" in record:
        record["record_sha256"] = record_digest(record)
    return record


def export_snapshot(folder: Path, settings: dict, data: Path, snapshot: Path) -> None:
    """Copy round ``folder`` (held, killed or finished) to ``snapshot/<round>``, each side's clock cut to its last
    work on disk as a resume would cut it. Written beside the old copy and swapped in, so a kill leaves one whole."""
    state = json.loads((folder / "turns.json").read_text())
    reference, ours = round_sides(int(folder.name.split("-")[1]), settings, data, folder)
    models = folder / "ours" / "models"
    files = _store_files(models)
    reference.restore(state["sides"]["reference"], last_reference_work(folder / "reference"))
    ours.restore(state["sides"]["ours"], max((path.stat().st_mtime for path in files), default=None))
    staging = snapshot / f".{folder.name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "reference").mkdir(parents=True)
    lines = []
    for run in finished_reference_runs(folder / "reference"):
        name = f"run-{run['run']:04d}-test.npy"
        shutil.copyfile(folder / "reference" / name, staging / "reference" / name)
        lines.append(json.dumps({**run, "finished": reference.clock(run["finished"])}) + "\n")
    (staging / "reference" / "runs.jsonl").write_text("".join(lines))
    clocks = {}
    for path in files:
        relative = path.relative_to(models)
        target = staging / "ours" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.name == RunStore.RUN_RECORD:
            target.write_text(json.dumps(_without_model(json.loads(path.read_text())), indent=2) + "\n")
        else:
            shutil.copyfile(path, target)
        clocks[relative.as_posix()] = ours.clock(path.stat().st_mtime)
    if (folder / "result.json").exists():
        shutil.copyfile(folder / "result.json", staging / "result.json")
    sides = {side.name: {"clock": side.clock(), "finished": side.finished, "returncode": side.returncode,
                         "stopped_by_budget": side.stopped_by_budget} for side in (reference, ours)}
    target, old = snapshot / folder.name, snapshot / f".{folder.name}.old"
    # Each copy's machine and clocks, after those of the copies before it: which machine ran which stretch.
    history = json.loads((target / SNAPSHOT_STATE).read_text())["history"] if (target / SNAPSHOT_STATE).exists() else []
    written = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    history.append({"written": written, "machine": this_machine(),
                    "clocks": {name: round(side["clock"], 1) for name, side in sides.items()}})
    atomic_write_json(staging / SNAPSHOT_STATE, {"settings": settings, "sides": sides, "ours_file_clocks": clocks,
                                                 "written": written, "history": history})
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    say(f"budget: snapshot of {folder.name} in {target} (reference {format_seconds(sides['reference']['clock'])}, "
        f"ours {format_seconds(sides['ours']['clock'])} of their clocks)")


def import_snapshot(source: Path, folder: Path, settings: dict, sides: tuple[Side, Side]) -> None:
    """Lay a snapshot out as the round folder a held bench leaves: each side's clock one turn that ends now, and
    the files' times (the runs' finish times) at their clock times within it, so that ``--resume`` takes it as is."""
    state = json.loads((source / SNAPSHOT_STATE).read_text())
    if state["settings"] != settings:
        raise SystemExit(f"{source / SNAPSHOT_STATE}: measured with other settings ({state['settings']}); use another --snapshot")
    start = time.time() - max(side["clock"] for side in state["sides"].values()) - 1.0
    (folder / "reference").mkdir(parents=True, exist_ok=True)
    lines = []
    for line in (source / "reference" / "runs.jsonl").read_text().splitlines():
        run = json.loads(line)
        name = f"run-{run['run']:04d}-test.npy"
        shutil.copyfile(source / "reference" / name, folder / "reference" / name)
        lines.append(json.dumps({**run, "finished": start + run["finished"]}) + "\n")
    (folder / "reference" / "runs.jsonl").write_text("".join(lines))
    models = folder / "ours" / "models"
    for relative, clock in state["ours_file_clocks"].items():
        target = models / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / "ours" / relative, target)
        os.utime(target, (start + clock, start + clock))
    if (source / "result.json").exists():
        shutil.copyfile(source / "result.json", folder / "result.json")
    turns = {side.name: {"command": side.command, "turns": [[start, start + state["sides"][side.name]["clock"]]],
                         "turn_started": None, **{key: state["sides"][side.name][key]
                                                  for key in ("finished", "returncode", "stopped_by_budget")}}
             for side in sides}
    atomic_write_json(folder / "turns.json", {"settings": settings, "sides": turns})
    say(f"budget: {folder.name} taken from {source} (written {state['written']}): reference "
        f"{format_seconds(state['sides']['reference']['clock'])}, ours {format_seconds(state['sides']['ours']['clock'])}")


def peek(work: Path) -> None:
    """Score the rounds under ``work`` so far, at the budgets both sides' clocks have passed, from the files a
    running or held bench writes (read only; it reads the stores and predictions, so best done while held)."""
    folders = sorted(work.glob("round-*"), key=lambda folder: int(folder.name.split("-")[1]))
    if not folders:
        raise SystemExit(f"{work}: no round has started there")
    for folder in folders:
        number = int(folder.name.split("-")[1])
        if (folder / "result.json").exists():
            print_round(number, json.loads((folder / "result.json").read_text()))
            continue
        if not (folder / "turns.json").exists():  # before its first turn ended
            print(f"\nround {number}: no turn has ended yet")
            continue
        state = json.loads((folder / "turns.json").read_text())
        settings = state["settings"]
        data = competition_folder(work, settings["images"])
        truth = answer_key_labels(open_workspace(data, work / "answer-key", read_only=True).competition)
        sides = round_sides(number, settings, data, folder)
        for side in sides:
            side.turns = [tuple(turn) for turn in state["sides"][side.name]["turns"]]
        reference, ours = sides
        _, reference_curve = reference_points(reference, folder / "reference", settings["threshold"], truth)
        _, our_curve = our_points(ours, data, folder / "ours" / "models", truth)
        reached = min(side.clock() for side in sides) / 60
        budgets = [budget for budget in settings["budgets"] if budget <= reached]
        print(f"\nround {number} so far: reference {reference.clock() / 60:.1f} min, ours {ours.clock() / 60:.1f} min "
              f"of {settings['budgets'][-1]:g}; reference votes {[(round(p['minutes'], 1), round(p['accuracy'], 4)) for p in reference_curve]}; "
              f"ours {[(round(p['minutes'], 1), round(p['accuracy'], 4)) for p in our_curve]}")
        if budgets:
            print_round(number, score_round(reference_curve, our_curve, budgets), final=f"{budgets[-1]:g}-minute accuracy")


def without_time_budget(preset: str) -> list[str]:
    """The arguments that switch off a preset's own time budget (the full preset's 1.85 hours): the pipeline's
    clock would count the other side's turns, and the bench stops the job at the last budget. Its runs keep the
    preset's length: with the hours switched off by a huge HOURS alone they would fill it (kaggle_pipeline.budget:
    60-epoch runs, which the bench ran from 2026-12-05 until this was seen). A preset without hours runs as it is."""
    if PRESETS[preset]["hours"] is None:
        return []
    return ["--hours", "1000", "--epochs", str(PRESETS[preset]["epochs"])]


def rounded(items: list[dict]) -> list[dict]:
    return [{key: round(value, 4) if isinstance(value, float) else value for key, value in item.items()} for item in items]


def spread(rounds: list[dict]) -> list[dict]:
    """Per budget, the lowest and highest value over the rounds."""
    rows = []
    for index, row in enumerate(rounds[0]["table"]):
        values = {key: [item["table"][index][key] for item in rounds if item["table"][index][key] is not None]
                  for key in ("reference", "ours", "difference")}
        rows.append({"minutes": row["minutes"], **{key: [min(found), max(found)] if found else None
                                                  for key, found in values.items()}})
    return rows


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.6), dpi=120)
    budget = report["settings"]["budgets"][-1]
    for number, item in enumerate(report["rounds"]):
        for name, color, style in (("reference", "tab:blue", "o--"), ("ours", "tab:orange", "s-")):
            curve = item[name]["curve"]
            if not curve:
                continue
            minutes = [point["minutes"] for point in curve] + [budget]
            values = [point["accuracy"] for point in curve] + [curve[-1]["accuracy"]]
            axes.step(minutes, values, style, where="post", color=color, markevery=list(range(len(curve))),
                      alpha=1.0 if number == 0 else 0.5, label=name if number == 0 else None)
    axes.set_xlabel("minutes of this machine (search and start-up included)")
    axes.set_ylabel("voted accuracy on the answer key")
    settings = report["settings"]
    machine = report.get("machine", {})
    where = f"\non {machine['cpu']}, {machine['cores']} cores, {machine['precision']}" if "cpu" in machine else ""
    axes.set_title(f"Fashion-MNIST, {settings['images'] or 60000} images: reference (majority of runs >= "
                   f"{settings['threshold']}) vs ours ({settings['preset']} preset){where}", fontsize=8)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def finish(report: dict, out: Path | None, plot_path: Path) -> None:
    """Print the spread of several rounds, write the report (when ``out``) and draw its curve."""
    report.pop("spread", None)
    if len(report["rounds"]) > 1:
        report["spread"] = spread(report["rounds"])
        print("\nspread over the rounds (lowest, highest):")
        for row in report["spread"]:
            print(f"{row['minutes']:7g} min  reference {row['reference']}  ours {row['ours']}  difference {row['difference']}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    plot(report, plot_path)
    print(f"wrote {plot_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--small", action="store_true", help="the 75-minute setting: " + json.dumps(SETTINGS["small"]))
    mode.add_argument("--smoke", action="store_true", help="check this script in a few minutes (measures nothing)")
    parser.add_argument("--budgets", type=float, nargs="+", help="minutes per side (default: the setting's)")
    parser.add_argument("--chunk", type=float, help="seconds per turn (default: the setting's)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat with new seeds, alternating the side that starts")
    parser.add_argument("--first-round", type=int, default=1,
                        help="number of the first round (its seeds and which side starts): --first-round 2 adds a "
                             "second round to a --work that holds the first")
    parser.add_argument("--resume", action="store_true",
                        help="go on with the rounds a killed bench left in --work (same settings), its work lost in "
                             "the kill redone and not counted; while the file <work>/HOLD exists a bench stays stopped")
    parser.add_argument("--peek", action="store_true",
                        help="print the rounds in --work so far (running, held or killed), training nothing")
    parser.add_argument("--snapshot", type=Path,
                        help="a folder to copy each round to at every hold and at its end, small enough to commit, and "
                             "with --resume to take a round from where this machine has none (a new machine)")
    parser.add_argument("--export", action="store_true",
                        help="copy the rounds in --work to --snapshot now (after a kill), training nothing")
    parser.add_argument("--work", type=Path, help="working folder (default: models/bench-budget-<setting>; models/ is git-ignored)")
    parser.add_argument("--out", type=Path, help="default: docs/budget[_small|_smoke].json")
    parser.add_argument("--plot", type=Path, help="default: docs/budget_curve[_small|_smoke].png")
    parser.add_argument("--replot", type=Path, nargs="+",
                        help="redraw the plot from saved --out files, training nothing; several are one measurement's "
                             "rounds (taken with --first-round), merged with their spread, and written to --out if given")
    # The reference side's child process.
    parser.add_argument("--reference-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threshold", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_worker:
        reference_worker(args)
        return
    if args.first_round < 1:  # before the data folder is written
        parser.error(f"--first-round {args.first_round}: rounds are numbered from 1")
    name = "small" if args.small else "smoke" if args.smoke else "full"
    suffix = "" if name == "full" else f"_{name}"
    plot_path = args.plot or Path(f"docs/budget_curve{suffix}.png")
    if args.replot:
        reports = [json.loads(path.read_text()) for path in args.replot]
        for path, each in zip(args.replot[1:], reports[1:], strict=True):
            if each["settings"] != reports[0]["settings"]:  # rounds of one measurement share its setting and budgets
                parser.error(f"{path}: another setting than {args.replot[0]}'s; only rounds of one measurement merge")
        report = {**reports[0], "rounds": sorted((item for each in reports for item in each["rounds"]),
                                                 key=lambda item: item["round"])}
        numbers = [item["round"] for item in report["rounds"]]
        if len(set(numbers)) < len(numbers):  # the same round twice: two measurements, not one
            parser.error(f"--replot: round numbers {numbers} repeat; add rounds with --first-round")
        finish(report, args.out, plot_path)
        return
    if args.peek:
        peek((args.work or Path(f"models/bench-budget-{name}")).resolve())
        return
    if args.export and args.snapshot is None:
        parser.error("--export needs --snapshot (where to copy the rounds to)")
    out = args.out or Path(f"docs/budget{suffix}.json")
    settings = dict(SETTINGS[name], setting=name)
    if args.budgets:
        settings["budgets"] = sorted(args.budgets)
    if args.chunk:
        settings["chunk"] = args.chunk
    work = (args.work or Path(f"models/bench-budget-{name}")).resolve()
    machine = this_machine()
    snapshot = args.snapshot and args.snapshot.resolve() / machine_key(machine)
    if snapshot is not None:
        others = sorted(path.name for path in snapshot.parent.iterdir() if path.is_dir() and path != snapshot) \
            if snapshot.parent.is_dir() else []
        say(f"budget: this machine's snapshots go to {snapshot}" + (f" (other kinds there: {', '.join(others)})" if others else ""))
    try:  # one bench per --work: a --resume beside a held bench would drive the same sides twice
        StoreLock(work, "bench/budget.py").acquire()
    except PipelineError as error:
        raise SystemExit(str(error)) from None
    data = competition_folder(work, settings["images"])
    if args.export:
        for folder in sorted(work.glob("round-*")):
            if (folder / "turns.json").exists():
                state = json.loads((folder / "turns.json").read_text())
                if state["settings"] != settings:
                    raise SystemExit(f"{folder / 'turns.json'}: measured with other settings ({state['settings']})")
                export_snapshot(folder, settings, data, snapshot)
            else:
                say(f"budget: {folder}: no turn has started there; nothing to copy")
        return
    truth = answer_key_labels(open_workspace(data, work / "answer-key", read_only=True).competition)

    numbers = range(args.first_round, args.first_round + args.rounds)
    rounds = [measure_round(number, settings, data, work, truth, args.resume, snapshot) for number in numbers]
    report = {"settings": settings, "data": str(data), "machine": machine, "versions": library_versions(),
              "rounds": rounds}
    finish(report, out, plot_path)


if __name__ == "__main__":
    main()
