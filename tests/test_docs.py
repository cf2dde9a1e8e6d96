"""The dataset contract in docs/schema.md lists every registered statistic."""

from pathlib import Path

from gradstats import statistics
from gradstats.simulate.estimators import available_estimators

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def test_schema_doc_lists_every_registered_statistic():
    available_estimators()  # importing the estimators registers their statistics
    text = SCHEMA.read_text()
    missing = [name for name in statistics.REGISTRY if f"| `{name}` |" not in text]
    assert not missing, f"run scripts/gen_schema_doc.py; missing: {missing}"
