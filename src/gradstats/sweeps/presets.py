"""Built-in sweep files shipped inside the package (``gradstats presets`` lists them)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from gradstats.sweeps.sweepfile import SweepError, SweepFile, load_sweep, parse_sweep

DEFAULT_PRESET = "quickstart"


def preset_names() -> list[str]:
    """Names of the built-in presets (file stems under gradstats/sweeps/presets)."""
    folder = resources.files("gradstats.sweeps") / "presets"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir()
                  if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    """The TOML text of preset ``name``."""
    path = resources.files("gradstats.sweeps") / "presets" / f"{name}.toml"
    if not path.is_file():
        raise SweepError(f"sweep: no file or preset named {name!r}; presets: "
                         f"{', '.join(preset_names())}")
    return path.read_text()


def resolve_sweep(spec: str | None) -> SweepFile:
    """A sweep from a file path or a preset name (None: the default preset)."""
    spec = spec or DEFAULT_PRESET
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        return load_sweep(path)
    return parse_sweep(tomllib.loads(preset_text(spec)))


def preset_description(name: str) -> str:
    """The preset's one-line ``description``."""
    return tomllib.loads(preset_text(name)).get("description", "")
