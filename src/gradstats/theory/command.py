"""``gradstats theory``: mean-field numbers of one architecture, or a phase diagram.

`theory_command` is a plain function with typer options; the CLI registers it, e.g.
``app.command("theory")(theory_command)``. jax loads only when the command runs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import typer

from gradstats.spec import ACTIVATIONS, PARAMETERIZATIONS

ActivationChoice = Literal[ACTIVATIONS]
ParameterizationChoice = Literal[PARAMETERIZATIONS]
# |chi_1 - 1| at or below which the phase is critical (`theory.signal.classify`); there every
# depth scale -1/ln(chi) exceeds about 1/PHASE_TOL layers and its sign is round-off.
PHASE_TOL = 1e-3


def _fmt(v: float) -> str:
    if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
        return str(v)
    return f"{v:.6g}"


MAX_GRID_POINTS = 2001  # 1001 x 1001 takes ~8 s on a 2-core machine, 2001 about four times that
MAX_DEPTH = 10_000  # the table iterates over the layers: ~4 s at 10^4 (10^8 would take hours)


def _depth_scale(v: float, phase: str) -> str:
    """A depth scale for the table: at criticality a huge finite value (whose sign is
    round-off) reads "> 1000 (critical)" rather than e.g. -103413."""
    v = float(v)
    if phase == "critical" and math.isfinite(v) and abs(v) > 1 / PHASE_TOL:
        return f"> {1 / PHASE_TOL:g} (critical)"
    if phase == "critical" and math.isinf(v):
        return "inf (critical)"
    return _fmt(v)


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
    activation: Annotated[ActivationChoice, typer.Option(
        "--activation", help="activation function")] = "relu",
    sigma_w2: Annotated[float, typer.Option("--sigma-w2", help="weight variance")] = 2.0,
    sigma_b2: Annotated[float, typer.Option("--sigma-b2", help="bias variance")] = 0.0,
    parameterization: Annotated[ParameterizationChoice, typer.Option(
        "--parameterization", help="parameterization (docs/theory.md)")] = "ntk",
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
    from rich.table import Table

    from gradstats.spec import Architecture, SpecError
    from gradstats.terminal import status, stdout_console

    console = stdout_console()
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
        raise typer.BadParameter(f"choose from {', '.join(PARAMETERIZATIONS)}",
                                 param_hint="--parameterization")

    with status("loading the theory (jax)"):
        from gradstats import theory

    if phase_diagram:
        if not 2 <= grid_points <= MAX_GRID_POINTS:
            raise typer.BadParameter(f"need 2..{MAX_GRID_POINTS} (the diagram has its square "
                                     f"of points), got {grid_points}", param_hint="--grid-points")
    elif depth > MAX_DEPTH:
        raise typer.BadParameter(f"at most {MAX_DEPTH} (the backward ratio iterates over the "
                                 f"layers), got {depth}", param_hint="--depth")
    if phase_diagram:
        import numpy as np

        sw = np.linspace(0.1, sigma_w2_max, grid_points)
        sb = np.linspace(0.0, sigma_b2_max, grid_points)
        with status(f"computing a {grid_points}x{grid_points} phase diagram ({activation})"):
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
                            sigma_b2=sigma_b2, parameterization=parameterization,
                            input_dim=width)  # nothing printed depends on input_dim
    except SpecError as exc:
        raise typer.BadParameter(exc.problem, param_hint=f"--{exc.field.replace('_', '-')}") from exc
    with status("computing mean-field theory"):
        sp = theory.signal_propagation(arch, q0=q0, tol=PHASE_TOL)
    table = Table(title=f"mean-field theory: {activation}, sigma_w2={sigma_w2:g}, "
                        f"sigma_b2={sigma_b2:g}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for name, v in (("q*", sp.q_star), ("c*", sp.c_star), ("chi_1", sp.chi_1),
                    ("chi_c", sp.chi_c)):
        table.add_row(name, _fmt(float(v)))
    for name, v in (("xi_q (layers)", sp.xi_q), ("xi_c (layers)", sp.xi_c),
                    ("xi_grad (layers)", sp.xi_grad)):
        table.add_row(name, _depth_scale(v, sp.phase))
    table.add_row("phase", sp.phase)
    table.add_row(f"backward ratio layer 1 / readout (depth {depth})",
                  _fmt(float(sp.backward_ratio[0])))
    if activation == "relu" and arch.init == "gaussian":
        from gradstats.theory import finite_width

        with status("computing finite-width terms"):
            jac = finite_width.jacobian_log_norm(arch)
        table.add_row(f"beta = depth/width ({width})", _fmt(jac.beta))
        table.add_row("Var ln||J u||^2 (finite width)", _fmt(jac.var))
    console.print(table)
