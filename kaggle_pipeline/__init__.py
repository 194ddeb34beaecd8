"""kaggle_pipeline: hyperopt search, threshold-gated retraining and voting for Kaggle image competitions."""

__version__ = "0.1.0"
