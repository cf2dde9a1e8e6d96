"""A sweep as TOML text: what ``gradstats run`` stores as ``DIR/sweep.toml`` (the sweep as
run, ``--set`` overrides applied), so a results directory says how to rerun it.

The sweep-file format (`gradstats.sweeps.sweepfile`) holds strings, integers, floats,
booleans and (nested) lists of them, so a small writer covers it; `dumps` round-trips
through `tomllib` to the same `SweepFile`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from gradstats.sweeps.sweepfile import SweepFile

# The comment at the top of a stored sweep file.
HEADER = ("The sweep as run into this results directory (--set overrides applied).\n"
          "Rerun or resume it with: gradstats run THIS_FILE --out THIS_DIRECTORY")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(sweep: SweepFile, header: str = HEADER) -> str:
    """The TOML text of ``sweep``; ``header`` lines become comments at the top."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"name = {_value(sweep.name)}"]
    if sweep.description:
        lines.append(f"description = {_value(sweep.description)}")
    lines.append(f"seeds = {_value(sweep.seeds)}")
    if sweep.measure:
        lines.append(f"measure = {_value(sweep.measure)}")
    for section, table in (("grid", sweep.grid), ("fixed", sweep.fixed)):
        if table:
            lines += ["", f"[{section}]", *_pairs(table)]
    for section, tables in (("zip", sweep.zip), ("exclude", sweep.exclude)):
        for table in tables:
            lines += ["", f"[[{section}]]", *_pairs(table)]
    return "\n".join(lines) + "\n"


def _pairs(table: dict[str, Any]) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in table.items()]


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    """One TOML value: a bool, int, float, string, list or inline table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        # JSON's escapes are TOML basic-string escapes; DEL is a control character in TOML only
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")
