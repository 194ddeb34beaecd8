"""kaggle_pipeline: hyperopt search, threshold-gated retraining and voting for Kaggle image competitions."""

import logging

# Every module logs to a logger under "kaggle_pipeline" (progress lines at INFO, skipped damaged files at
# WARNING). A library prints nothing by itself: the command line installs a handler, and a notebook chooses
# with the standard calls, e.g. logging.basicConfig(level=logging.INFO) to see progress, or
# logging.getLogger("kaggle_pipeline").setLevel(logging.ERROR) to silence it.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["VotingEnsemble"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # On first use: VotingEnsemble imports scikit-learn (about 1.4 s), which every command line would pay here.
    if name == "VotingEnsemble":
        from kaggle_pipeline.estimator import VotingEnsemble

        return VotingEnsemble
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
