"""Retrain runs as Ray tasks: ``EXECUTOR=ray`` (optional; ``make setup-ray`` installs Ray).

Joins the cluster at ``RAY_ADDRESS`` (``--ray-address``), or starts a local Ray instance, or uses the one
this process already started. The training data is put in Ray's object store once; every task gets the same
references, so a node fetches the arrays once and its tasks read them without copying. Each task holds one
GPU when the cluster has GPUs, otherwise ``cpus_per_run`` CPUs (default 1), and TensorFlow in it uses that
many threads. Tasks are never retried by Ray (a crashed run is recorded as failed, as the local executor
records an exception) and each runs in a fresh worker process, so a GPU's memory is returned between runs.

Only the outcome travels back (history, probabilities, the model's bytes when kept); the ensemble loop
writes it to the run store in this process. See docs/SCALE-OUT.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from kaggle_pipeline.errors import ParameterError, PipelineError, check_stop
from kaggle_pipeline.executors import BREAK_RUN, RunData, RunJob, failure_message, train_job

PACKAGE = Path(__file__).resolve().parent
WAIT_SECONDS = 1.0  # ray.wait in slices, so that Ctrl-C is seen between them


def _remote_train(job: RunJob, x_train, y_train, x_validation, y_validation, x_test, num_classes, folds=None):
    # Top-level ObjectRef arguments arrive as the arrays themselves (zero-copy, read-only views).
    return train_job(job, RunData(x_train, y_train, x_validation, y_validation, x_test, num_classes, folds))


def task_environment() -> dict:
    environment = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    if os.environ.get(BREAK_RUN):
        environment[BREAK_RUN] = os.environ[BREAK_RUN]
    return environment


def connect(address: str | None = None):
    """Ray, connected: to ``address`` (else $RAY_ADDRESS, else a new local instance), unless this process already
    is (a notebook's own ray.init, which must then make kaggle_pipeline importable on the workers itself, e.g.
    ``runtime_env={"py_modules": [...]}``). Returns (whether connected here, the ray module)."""
    try:
        import ray
    except ImportError:
        raise ParameterError("executor", "ray", "Ray is not installed; run 'make setup-ray' "
                            "(pip install 'kaggle-pipeline[ray]')") from None
    if ray.is_initialized():
        return False, ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        # The package travels to every worker with the job, so workers need Ray and TensorFlow only.
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env={"py_modules": [str(PACKAGE)], "env_vars": task_environment()})
    except ConnectionError as error:
        raise ParameterError("ray_address", address, f"cannot join the Ray cluster ({failure_message(error)})") from None
    return True, ray


class RayExecutor:
    name = "ray"

    def __init__(self, data: RunData, address: str | None = None, cpus_per_run: int | None = None):
        self.connected_here, ray = connect(address)
        self.ray = ray
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.cpus = int(resources.get("CPU", 1))
        self.cpus_per_run = cpus_per_run or 1
        if self.gpus:
            self.capacity = self.gpus
            options = {"num_gpus": 1, "num_cpus": self.cpus_per_run}
        else:
            self.capacity = max(1, self.cpus // self.cpus_per_run)
            options = {"num_cpus": self.cpus_per_run}
        self.task = ray.remote(max_retries=0, max_calls=1, runtime_env={"env_vars": task_environment()},
                               **options)(_remote_train)
        self.data = [ray.put(array) for array in (data.x_train, data.y_train, data.x_validation, data.y_validation,
                                                  data.x_test)] + [data.num_classes, data.folds]
        self.pending: dict = {}  # ObjectRef -> RunJob

    def describe(self) -> str:
        where = f"{self.gpus} GPU(s), one per run" if self.gpus else f"{self.cpus} CPU(s), {self.cpus_per_run} per run"
        return f"Ray executor, {where}: up to {self.capacity} runs at once"

    def submit(self, job: RunJob) -> None:
        if not self.gpus:
            job.threads = self.cpus_per_run
        self.pending[self.task.remote(job, *self.data)] = job

    def next_finished(self) -> tuple[RunJob, dict]:
        ready: list = []
        while not ready:
            check_stop()
            ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=WAIT_SECONDS)
        job = self.pending.pop(ready[0])
        try:
            return job, self.ray.get(ready[0])
        except self.ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, PipelineError):
                raise error.cause from None
            return job, {"status": "failed", "error": failure_message(error.cause or error), "traceback": str(error)}
        except self.ray.exceptions.RayError as error:  # the worker died: killed, out of memory, node lost
            return job, {"status": "failed", "error": failure_message(error), "traceback": str(error)}

    def cancel(self) -> None:
        for reference in self.pending:
            self.ray.cancel(reference, force=True)
        self.pending.clear()

    def close(self) -> None:
        self.cancel()
        if self.connected_here:
            self.ray.shutdown()
