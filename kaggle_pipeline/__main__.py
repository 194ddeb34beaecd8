import sys

from kaggle_pipeline.cli import main

sys.exit(main())
