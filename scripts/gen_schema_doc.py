"""Regenerate the variables table of docs/schema.md from the statistics registry.

    python scripts/gen_schema_doc.py
"""

from __future__ import annotations

import re
from pathlib import Path

from gradstats import statistics
from gradstats.simulate.estimators import ESTIMATORS, available_estimators, make_estimator

DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"
BEGIN, END = "<!-- variables:begin -->", "<!-- variables:end -->"


def variables_table() -> str:
    available_estimators()  # registers every built-in estimator and its statistics
    group = {name: "always" for name in statistics.REGISTRY}
    for est_name in ESTIMATORS:
        for stat in make_estimator(est_name).statistics:
            group[stat] = f"measure: {est_name}"
    rows = ["| variable | dims (beyond sweep axes, seed) | units | recorded | theory | meaning |",
            "|---|---|---|---|---|---|"]
    for name, stat in sorted(statistics.REGISTRY.items()):
        dims = ", ".join(stat.dims) or "()"
        meaning = f"{stat.long_name}: {stat.description}".replace("|", "\\|")  # norms: ||g||
        rows.append(f"| `{name}` | {dims} | {stat.units} | {group.get(name, 'derived')} | "
                    f"{'yes' if stat.theory else ''} | {meaning} |")
    return "\n".join(rows)


def main() -> None:
    text = DOC.read_text()
    table = f"{BEGIN}\n{variables_table()}\n{END}"
    DOC.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), table, text, flags=re.S))
    print(f"updated {DOC}")


if __name__ == "__main__":
    main()
