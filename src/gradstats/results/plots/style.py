"""The one plotting style of the figures: sizes, fonts, palette, legends, scales, bands.

Every public plot function is wrapped in `styled` (matplotlib rc settings for its duration
only; a notebook's own settings are left alone). Colours: a colour-blind-safe palette of
`MAX_LINES` distinct colours; a panel never holds more lines than that (more facet into
further panels: `gradstats.results.plots.common.facet_figure`). Legends go outside the
axes, to the right of the panel they describe. Log axes only when the data span more than
`LOG_DECADES` decades.
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Callable, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.lines import Line2D

DPI = 200  # PNG resolution: a 3.2 in panel is 640 px
PANEL_SIZE = (3.2, 2.5)  # inches per panel: two panels fit a 6.5 in text width
FONT = 8.0  # pt; titles 8.5, legends 7
LOG_DECADES = 1.0
# Okabe-Ito (colour-blind safe) then Paul Tol's muted: 10 distinct colours
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#332288",
           "#999933", "#882255", "#000000")
MAX_LINES = len(PALETTE)
THEORY_KEY = "dashed: theory (the prediction compare tests)"
MEASURED_KEY = "solid: seed mean ± SE"

STYLE = {
    "font.size": FONT, "axes.titlesize": FONT + 0.5, "axes.labelsize": FONT,
    "xtick.labelsize": FONT - 1, "ytick.labelsize": FONT - 1, "legend.fontsize": FONT - 1,
    "legend.title_fontsize": FONT - 1, "figure.titlesize": FONT + 1, "legend.frameon": False,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.25, "grid.linewidth": 0.5, "lines.linewidth": 1.3, "lines.markersize": 3.5,
    "savefig.dpi": DPI, "figure.dpi": 100, "mathtext.fontset": "dejavusans",
    "pdf.fonttype": 42, "svg.fonttype": "none",
}


def styled(fn: Callable) -> Callable:
    """Run a plot function under `STYLE` (rc settings restored afterwards)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def colour(k: int) -> str:
    """The k-th line colour of a panel (k < MAX_LINES: panels never repeat a colour)."""
    return PALETTE[k % len(PALETTE)]


def wrap(text: str, width_in: float, fontsize: float = FONT + 0.5) -> str:
    """``text`` wrapped to fit ``width_in`` inches at ``fontsize`` points."""
    chars = max(int(width_in * 72 / (0.64 * fontsize)), 12)
    # math text ($...$) never breaks: its spaces are protected while wrapping
    pieces = text.split("$")
    protected = "$".join(p.replace(" ", "\x00") if i % 2 else p for i, p in enumerate(pieces))
    lines = (textwrap.fill(part, chars, break_long_words=False, break_on_hyphens=False)
             for part in protected.split("\n"))
    return "\n".join(lines).replace("\x00", " ")


def spans_decades(values, decades: float = LOG_DECADES) -> bool:
    """Whether the finite values are all positive and span more than ``decades`` decades."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2 or np.any(v <= 0):
        return False
    return math.log10(v.max() / v.min()) > decades


def auto_scale(ax, axis: str = "y", values=None) -> str:
    """Log scale on ``axis`` when the data drawn (or ``values``) span > `LOG_DECADES`."""
    if values is None:
        values = _drawn(ax, axis)
    scale = "log" if spans_decades(values) else "linear"
    (ax.set_yscale if axis == "y" else ax.set_xscale)(scale)
    if scale == "linear":
        _plain_linear(ax, axis, values)
    return scale


def _plain_linear(ax, axis: str, values) -> None:
    """No offset notation on a linear axis, and a flat series (spread below 1e-6 of its size:
    round-off, e.g. an active fraction of exactly 1) shown on a +-5% range instead of its
    floating-point noise."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    fmt = target.get_major_formatter()
    if hasattr(fmt, "set_useOffset"):
        fmt.set_useOffset(False)
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size and v.max() - v.min() <= 1e-6 * max(abs(v.max()), abs(v.min()), 1e-300):
        centre = float(v.mean())
        half = 0.05 * abs(centre) if centre else 0.05
        (ax.set_ylim if axis == "y" else ax.set_xlim)(centre - half, centre + half)


def _drawn(ax, axis: str) -> np.ndarray:
    parts = [np.asarray(line.get_ydata() if axis == "y" else line.get_xdata(), float).ravel()
             for line in ax.get_lines() if line.get_gid() not in (None, "key")]
    return np.concatenate(parts) if parts else np.array([])


def band(ax, x, y, se, color: str, log: bool = False) -> None:
    """Shade y ± se (the standard error over seeds); clipped above 0 on a log axis."""
    x, y, se = (np.asarray(a, dtype=float) for a in (x, y, se))
    ok = np.isfinite(y) & np.isfinite(se)
    if not ok.any():
        return
    lo = y - se
    if log:
        lo = np.maximum(lo, y * 0.05)
    ax.fill_between(x[ok], lo[ok], (y + se)[ok], color=color, alpha=0.22, lw=0, gid="band")


def legend_right(ax, entries: Sequence[tuple[str, str]] = (),
                 keys: Sequence[tuple[str, dict]] = (), title: str | None = None,
                 handles: Sequence | None = None, labels: Sequence[str] | None = None) -> None:
    """A legend to the right of ``ax``, outside its data area: one coloured line per
    (label, colour) of ``entries``, then grey style keys (label, Line2D kwargs), or the
    given handles and labels."""
    hs, ls = list(handles or []), list(labels or [])
    for text, color in entries:
        hs.append(Line2D([], [], color=color, lw=2.0))
        ls.append(text)
    for text, kwargs in keys:
        hs.append(Line2D([], [], **{"color": "0.35", **kwargs}))
        ls.append(text)
    if not hs:
        return
    ax.legend(hs, ls, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              title=title, alignment="left")
    # a tall legend: grow the figure so that it fits below the panel's top (a Figure only;
    # a subfigure's parent decides its size)
    rows = sum(text.count("\n") + 1 for text in ls) + (title.count("\n") + 1 if title else 0)
    needed = rows * (FONT - 1) * 1.45 / 72 + 0.35 * len(ls) / 8 + 0.9
    fig = ax.figure
    if hasattr(fig, "set_figheight") and needed > fig.get_figheight():
        fig.set_figheight(needed)


MEASURED_STYLE = {"ls": "-", "marker": "o", "ms": 3}
THEORY_STYLE = {"ls": "--"}
