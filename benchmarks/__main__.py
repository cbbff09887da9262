"""``python -m benchmarks``: the same tool as ``tts-server bench``."""

import sys

from benchmarks.bench.cli import main

sys.exit(main())
