"""``gradstats theory``: mean-field numbers of one architecture, or a phase diagram.

`theory_command` is a plain function with typer options; the CLI registers it, e.g.
``app.command("theory")(theory_command)``. jax loads only when the command runs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from gradstats.spec import ACTIVATIONS, PARAMETERIZATIONS


def _fmt(v: float) -> str:
    if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
        return str(v)
    return f"{v:.6g}"


def _check_numbers(q0: float, sigma_w2_max: float, sigma_b2_max: float) -> None:
    """Options that must be finite and in range (typer checks only that they are numbers)."""
    for hint, value, ok, need in (("--q0", q0, q0 > 0, "> 0"),
                                  ("--sigma-w2-max", sigma_w2_max, sigma_w2_max > 0.1, "> 0.1"),
                                  ("--sigma-b2-max", sigma_b2_max, sigma_b2_max >= 0, ">= 0")):
        if not (math.isfinite(value) and ok):
            raise typer.BadParameter(f"must be finite and {need}, got {value}", param_hint=hint)


def theory_command(
    width: Annotated[int, typer.Option("--width", help="hidden width (finite-width rows only)")] = 512,
    depth: Annotated[int, typer.Option("--depth", help="number of hidden layers")] = 3,
    activation: Annotated[str, typer.Option(
        "--activation", help=f"one of: {', '.join(ACTIVATIONS)}")] = "relu",
    sigma_w2: Annotated[float, typer.Option("--sigma-w2", help="weight variance")] = 2.0,
    sigma_b2: Annotated[float, typer.Option("--sigma-b2", help="bias variance")] = 0.0,
    parameterization: Annotated[str, typer.Option(
        "--parameterization", help="ntk or standard")] = "ntk",
    q0: Annotated[float, typer.Option("--q0", help="input mean square |x|^2/input_dim")] = 1.0,
    phase_diagram: Annotated[bool, typer.Option(
        "--phase-diagram", help="compute chi_1 and q* on a (sigma_w2, sigma_b2) grid")] = False,
    sigma_w2_max: Annotated[float, typer.Option(
        "--sigma-w2-max", help="phase diagram: largest sigma_w2 (grid from 0.1)")] = 4.0,
    sigma_b2_max: Annotated[float, typer.Option(
        "--sigma-b2-max", help="phase diagram: largest sigma_b2 (grid from 0)")] = 0.5,
    grid_points: Annotated[int, typer.Option(
        "--grid-points", help="phase diagram: points per axis")] = 41,
    out: Annotated[Path | None, typer.Option(
        "--out", help="phase diagram: write the dataset to this .nc file")] = None,
) -> None:
    """Print q*, chi_1, depth scales and the phase of an architecture (or a phase diagram)."""
    from rich.console import Console
    from rich.table import Table

    from gradstats.spec import Architecture, SpecError

    console = Console()
    _check_numbers(q0=q0, sigma_w2_max=sigma_w2_max, sigma_b2_max=sigma_b2_max)
    if out is not None:
        from gradstats import paths

        if not phase_diagram:
            raise typer.BadParameter("only a phase diagram is written; add --phase-diagram",
                                     param_hint="--out")
        paths.check_output_file(out, suffix=".nc")
    if activation not in ACTIVATIONS:
        raise typer.BadParameter(f"choose from {', '.join(ACTIVATIONS)}", param_hint="--activation")
    if parameterization not in PARAMETERIZATIONS:
        raise typer.BadParameter("choose ntk or standard", param_hint="--parameterization")

    from gradstats import theory

    if phase_diagram:
        if grid_points < 2:
            raise typer.BadParameter("need at least 2", param_hint="--grid-points")
        import numpy as np

        sw = np.linspace(0.1, sigma_w2_max, grid_points)
        sb = np.linspace(0.0, sigma_b2_max, grid_points)
        ds = theory.phase_diagram(activation, sw, sb, q0=q0)
        if out is not None:
            from gradstats.results import io

            io.replace_with(out, ds.to_netcdf)
            console.print(f"wrote phase diagram ({activation}, {grid_points}x{grid_points}) to {out}")
        table = Table(title=f"critical sigma_w2 ({activation})")
        table.add_column("sigma_b2", justify="right")
        table.add_column("sigma_w2 critical", justify="right")
        step = max(1, grid_points // 10)
        for b, c in zip(sb[::step], ds["sigma_w2_critical"].values[::step], strict=True):
            table.add_row(_fmt(float(b)), _fmt(float(c)))
        console.print(table)
        return

    try:
        arch = Architecture(width=width, depth=depth, activation=activation, sigma_w2=sigma_w2,
                            sigma_b2=sigma_b2, parameterization=parameterization)
    except SpecError as exc:
        raise typer.BadParameter(exc.problem, param_hint=f"--{exc.field.replace('_', '-')}") from exc
    sp = theory.signal_propagation(arch, q0=q0)
    table = Table(title=f"mean-field theory: {activation}, sigma_w2={sigma_w2:g}, "
                        f"sigma_b2={sigma_b2:g}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [("q*", sp.q_star), ("c*", sp.c_star), ("chi_1", sp.chi_1), ("chi_c", sp.chi_c),
            ("xi_q (layers)", sp.xi_q), ("xi_c (layers)", sp.xi_c),
            ("xi_grad (layers)", sp.xi_grad)]
    for name, v in rows:
        table.add_row(name, _fmt(float(v)))
    table.add_row("phase", sp.phase)
    table.add_row(f"backward ratio layer 1 / readout (depth {depth})",
                  _fmt(float(sp.backward_ratio[0])))
    if activation == "relu" and arch.init == "gaussian":
        from gradstats.theory import finite_width

        jac = finite_width.jacobian_log_norm(arch)
        table.add_row(f"beta = depth/width ({width})", _fmt(jac.beta))
        table.add_row("Var ln||J u||^2 (finite width)", _fmt(jac.var))
    console.print(table)
