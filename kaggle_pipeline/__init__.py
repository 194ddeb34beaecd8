"""kaggle_pipeline: hyperopt search, threshold-gated retraining and voting for Kaggle image competitions."""

from kaggle_pipeline.vote import VotingEnsemble

__all__ = ["VotingEnsemble"]
__version__ = "0.1.0"
