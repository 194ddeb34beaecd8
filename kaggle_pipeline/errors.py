"""The one exception type that reaches the user as a one-line message."""


class PipelineError(Exception):
    """A problem the user can fix: bad input, missing artifact, wrong option.

    The CLI prints ``error: <message>`` and exits with status 2, without a traceback.
    Raise it with a message that names the file (or option) and the problem.
    """
