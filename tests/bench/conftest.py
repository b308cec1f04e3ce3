"""`bench/` is run as `python -m bench` from the repository root and is not an installed package; put the
root first on sys.path so `import bench` finds it rather than this tests/bench folder."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
sys.modules.pop("bench", None)
