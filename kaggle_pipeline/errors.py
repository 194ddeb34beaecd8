"""The one exception type that reaches the user as a one-line message, and orderly stops on Ctrl-C or kill."""

import signal
import sys


class PipelineError(Exception):
    """A problem the user can fix: bad input, missing artifact, wrong option.

    The CLI prints ``error: <message>`` and exits with status 2, without a traceback.
    Raise it with a message that names the file (or option) and the problem.
    """


_stop_requested = False


def request_stop(signal_number=None, frame=None) -> None:
    """Signal handler for Ctrl-C and ``kill``: stop now, and remember it.

    CPython ignores a KeyboardInterrupt raised while a finalizer runs (it prints "Exception ignored"), so
    the raise alone can be lost; the long loops call ``check_stop`` between units of work to catch that.
    """
    global _stop_requested
    _stop_requested = True
    raise KeyboardInterrupt


def check_stop() -> None:
    if _stop_requested:
        raise KeyboardInterrupt


def _ignore_swallowed_interrupts(unraisable) -> None:
    # The stop it carried is already recorded and acted on by check_stop; its report would print a traceback.
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)


def install_stop_handlers() -> None:
    """Ctrl-C and ``kill`` (SIGTERM) both stop in order: half-written runs are removed, finished ones kept."""
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, request_stop)
    sys.unraisablehook = _ignore_swallowed_interrupts


class ParameterError(PipelineError, ValueError):
    """A library function's argument that cannot work, in the caller's words: it names the Python parameter
    (``n=0: must be at least 1``); the command line names the option the user typed instead
    (``--n 0 (N=): must be at least 1``, kaggle_pipeline.cli)."""

    def __init__(self, parameter: str, value, requirement: str):
        self.parameter, self.value, self.requirement = parameter, value, requirement
        super().__init__(f"{parameter}={value!r}: {requirement}")
