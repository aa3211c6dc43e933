"""Where the project keeps what it makes: `data/` beside the package (checkpoints, results)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
CHECKPOINTS = DATA / "checkpoints"
RESULTS = DATA / "results"
