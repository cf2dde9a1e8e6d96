"""The one plotting style of the figures: sizes, fonts, palette, legends, scales, bands.

Every public plot function is wrapped in `styled` (matplotlib rc settings for its duration
only; a notebook's own settings are left alone). Colours: a colour-blind-safe palette of
`MAX_LINES` distinct colours; a panel never holds more lines than that (more facet into
further panels: `gradstats.results.plots.common.facet_figure`). Figures are at most
`MAX_WIDTH` inches wide (a page's text width: they print at their own size, fonts of 7-9 pt
stay legible); more facets make more rows, not wider figures. Legends never cover data: one
panel's legend goes to its right (`legend_right`, labels wrapped to `LEGEND_WIDTH`), a
multi-panel figure's shared legend below the panels (`figure_legend`), a per-panel legend
of a multi-column figure below its panel (`legend_below`). Log axes only when the data span
more than `LOG_DECADES` decades.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import textwrap
from collections.abc import Callable, Iterator, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.lines import Line2D

DPI = 200  # PNG resolution: a 3.2 in panel is 640 px
PANEL_SIZE = (3.2, 2.5)  # inches per panel: two panels fit a 6.5 in text width
MAX_WIDTH = 7.0  # inches: no figure is wider than a page's text width
LEGEND_WIDTH = 1.7  # inches: a right legend's labels wrap to this width
MIN_PANEL = (1.45, 1.6)  # inches: narrower panels wrap into more rows (common.panel_grid)
BELOW_AXES = 0.45  # inches from an axes' bottom to a legend under it (ticks, x label)
FONT = 8.0  # pt; titles 8.5, legends 7
LOG_DECADES = 1.0
# Okabe-Ito (colour-blind safe) then Paul Tol's muted: 10 distinct colours
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#332288",
           "#999933", "#882255", "#000000")
MAX_LINES = len(PALETTE)
THEORY_KEY = "dashed: theory (what compare tests)"
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


@contextlib.contextmanager
def _quiet_lazy_reductions() -> Iterator[None]:
    """Seed means over all-NaN cells (layers that pad shallower depths, diverged seeds) are NaN
    without a warning, as xarray's eager reductions give them: dask's reductions of a lazily
    loaded sweep divide 0 / 0 in worker threads, where `numpy.errstate` does not reach, so
    they run in this thread (small reductions: no loss) under it."""
    try:
        import dask
    except ImportError:  # pragma: no cover - xarray's dask extra is a dependency
        scheduler = contextlib.nullcontext()
    else:
        scheduler = dask.config.set(scheduler="synchronous")
    with scheduler, np.errstate(invalid="ignore", divide="ignore"):
        yield


def styled(fn: Callable) -> Callable:
    """Run a plot function under `STYLE` (rc settings restored afterwards); a figure it made
    itself (no ``fig=``/``ax=`` given) then grows until its plot areas are `MIN_AXES_HEIGHT`
    tall (`ensure_plot_area`). Lazy (dask) datasets reduce as eager ones
    (`_quiet_lazy_reductions`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(STYLE), _quiet_lazy_reductions():
            fig = fn(*args, **kwargs)
            if kwargs.get("fig") is None and kwargs.get("ax") is None:
                ensure_plot_area(fig)
            return fig

    return wrapper


MIN_AXES_HEIGHT = 1.1  # inches: the shortest plot area a figure of ours leaves


def set_height(fig, inches: float) -> None:
    """Set a Figure's height, rounded up to 0.1 in (whole pixels at 80, 150 and 200 dpi)."""
    fig.set_figheight(math.ceil(inches * 10 - 1e-6) / 10)


def _plot_axes(fig) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and ax.axison
            and ax.get_label() != "<colorbar>"]


def ensure_plot_area(fig, min_height: float = MIN_AXES_HEIGHT, tries: int = 3) -> None:
    """Grow ``fig`` (a Figure; a subfigure's parent decides) until its shortest plot area is
    ``min_height`` inches: titles, labels and legends below the panels take their room from
    the figure, not from the data."""
    if not hasattr(fig, "set_figheight") or fig.get_layout_engine() is None:
        return
    for _ in range(tries):
        fig.canvas.draw()
        axes = _plot_axes(fig)
        if not axes:
            return
        heights = [ax.get_window_extent().height / fig.dpi for ax in axes]
        short = min_height - min(heights)
        if short <= 0.02:
            return
        rows = len({round(ax.get_position().y0, 2) for ax in axes})
        set_height(fig, fig.get_figheight() + short * rows + 0.05)


def colour(k: int) -> str:
    """The k-th line colour of a panel (k < MAX_LINES: panels never repeat a colour)."""
    return PALETTE[k % len(PALETTE)]


def _math_length(source: str) -> int:
    """Rough rendered length in characters of a math-text source (without the $): commands
    such as \\partial count one, braces and sub/superscript marks none."""
    plain = re.sub(r"\\[A-Za-z]+", "x", source)
    return max(1, len(re.sub(r"[{}^_\\]", "", plain)))


def wrap(text: str, width_in: float, fontsize: float = FONT + 0.5, em: float = 0.64) -> str:
    """``text`` wrapped to fit ``width_in`` inches at ``fontsize`` points, ``em`` the width
    of a character in font sizes (0.64: safe for titles, whose words vary; legend labels of
    digits and short words: 0.55); math text ($...$) never breaks and counts as wide as it
    renders, not as its source."""
    chars = max(int(width_in * 72 / (em * fontsize)), 12)
    pieces = text.split("$")
    maths = {}
    for i in range(1, len(pieces), 2):  # a placeholder as long as the rendered math
        mark = chr(0xE000 + len(maths))
        maths[mark] = pieces[i]
        pieces[i] = mark * _math_length(pieces[i])
    lines = "\n".join(textwrap.fill(part, chars, break_long_words=False, break_on_hyphens=False)
                      for part in "".join(pieces).split("\n"))
    for mark, source in maths.items():
        lines = re.sub(f"{mark}+", lambda _m, s=source: f"${s}$", lines)
    return lines


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
    else:
        log_ticks(ax, axis, values)
    return scale


def _narrow_log_locator(lo: float, hi: float):
    """Major ticks for values in [lo, hi] within two decades: 1, 2, 5 x 10^k, or every
    integer multiple 1..9 x 10^k when fewer than two of those fall inside, or (a range
    narrower still) linearly spaced round numbers: at least two labels inside the data."""
    from matplotlib.ticker import LogLocator, MaxNLocator

    def inside(subs: tuple[float, ...]) -> int:
        k = np.arange(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
        ticks = (np.asarray(subs)[:, None] * 10.0 ** k[None, :]).ravel()
        return int(np.sum((ticks >= lo) & (ticks <= hi)))

    for subs in ((1.0, 2.0, 5.0), tuple(float(m) for m in range(1, 10))):
        if inside(subs) >= 2:
            return LogLocator(subs=subs)
    return MaxNLocator(nbins=3)


def log_ticks(ax, axis: str = "y", values=None) -> None:
    """Readable ticks on a log axis: labels at 1, 2 and 5 x 10^k (instead of matplotlib's
    crowded minor labels 2, 3, 4, 6 x 10^k) when the values hold fewer than two powers of
    ten; at most 6 labelled powers of ten otherwise (a narrow panel over 8 decades crowds
    its labels); minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    if values is None:
        values = _drawn(ax, axis)
    target.set_minor_formatter(NullFormatter())  # minor ticks unlabelled: they crowd
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return
    decades = math.floor(math.log10(v.max())) - math.ceil(math.log10(v.min())) + 1
    if decades >= 2:  # powers of ten: at most 6 labelled ones (every 2nd, ...)
        target.set_major_locator(LogLocator(numticks=6))
        return
    target.set_major_locator(_narrow_log_locator(v.min(), v.max()))
    # every 1/2/5 tick labelled (the default labels only a subset below a decade or two),
    # as plain numbers where short ("0.05", "20"; "5 x 10^-1" is twice as wide)
    sci = LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(math.inf, math.inf))
    sci.set_axis(target)

    def short(value: float, pos=None) -> str:
        if 1e-3 <= abs(value) < 1e4:
            return f"{value:g}"
        return sci(value, pos)

    target.set_major_formatter(FuncFormatter(short))


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


def _handles(entries: Sequence[tuple[str, str]], keys: Sequence[tuple[str, dict]],
             handles: Sequence | None, labels: Sequence[str] | None) -> tuple[list, list]:
    hs, ls = list(handles or []), list(labels or [])
    for text, color in entries:
        hs.append(Line2D([], [], color=color, lw=2.0))
        ls.append(text)
    for text, kwargs in keys:
        hs.append(Line2D([], [], **{"color": "0.35", **kwargs}))
        ls.append(text)
    return hs, ls


def legend_right(ax, entries: Sequence[tuple[str, str]] = (),
                 keys: Sequence[tuple[str, dict]] = (), title: str | None = None,
                 handles: Sequence | None = None, labels: Sequence[str] | None = None) -> None:
    """A legend to the right of ``ax``, outside its data area: one coloured line per
    (label, colour) of ``entries``, then grey style keys (label, Line2D kwargs), or the
    given handles and labels; labels and title wrapped to `LEGEND_WIDTH`."""
    hs, ls = _handles(entries, keys, handles, labels)
    if not hs:
        return
    ls = [wrap(t, LEGEND_WIDTH - 0.35, FONT - 1, em=0.55) for t in ls]
    title = wrap(title, LEGEND_WIDTH, FONT - 1) if title else title
    ax.legend(hs, ls, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              title=title, alignment="left")
    # a tall legend: grow the figure so that it fits below the panel's top (a Figure only;
    # a subfigure's parent decides its size)
    rows = sum(text.count("\n") + 1 for text in ls) + (title.count("\n") + 1 if title else 0)
    needed = rows * (FONT - 1) * 1.45 / 72 + 0.35 * len(ls) / 8 + 0.9
    fig = ax.figure
    if hasattr(fig, "set_figheight") and needed > fig.get_figheight():
        set_height(fig, needed)


def _columns(labels: Sequence[str], width_in: float, fontsize: float = FONT - 1) -> int:
    """How many legend columns of ``labels`` fit in ``width_in`` inches."""
    longest = max((len(line) for t in labels for line in t.split("\n")), default=1)
    entry = longest * 0.5 * fontsize / 72 + 0.5  # text + handle + padding
    return max(1, min(len(labels), int(width_in // entry)))


def legend_height(labels: Sequence[str], ncol: int = 1, title: str | None = None,
                  fontsize: float = FONT - 1) -> float:
    """Estimated height in inches of a legend of ``labels`` in ``ncol`` columns."""
    lines = [t.count("\n") + 1 for t in labels]
    rows = sum(max(lines[k:k + ncol]) for k in range(0, len(lines), ncol))
    rows += title.count("\n") + 1 if title else 0
    return rows * fontsize * 1.75 / 72 + 0.15


def _grow(fig, key, height: float) -> None:
    """Grow a Figure (a subfigure's parent decides its size) by ``height`` inches for the
    legend at ``key``, once per key: the largest legend of a row of panels counts."""
    if not hasattr(fig, "set_figheight"):
        return
    grown = fig.__dict__.setdefault("_gradstats_legend_rows", {})
    extra = height - grown.get(key, 0.0)
    if extra > 0:
        grown[key] = height
        set_height(fig, fig.get_figheight() + extra)


def _column_width(ax) -> float:
    """Inches of the grid column that holds ``ax`` (its share of the figure's width, less a
    margin): what a legend under or in the panel may use."""
    fig = ax.figure
    total = fig.get_figwidth() if hasattr(fig, "get_figwidth") else fig.bbox.width / fig.figure.dpi
    spec = ax.get_subplotspec()
    ncols = spec.get_gridspec().ncols if spec is not None else 1
    return max(total / ncols - 0.2, 1.0)


def legend_below(ax, entries: Sequence[tuple[str, str]] = (),
                 keys: Sequence[tuple[str, dict]] = (), title: str | None = None,
                 handles: Sequence | None = None, labels: Sequence[str] | None = None) -> None:
    """A legend under ``ax`` (below its x label), as many columns as fit the panel's width:
    for per-panel legends of a figure with several columns of panels."""
    hs, ls = _handles(entries, keys, handles, labels)
    if not hs:
        return
    width = _column_width(ax)
    ls = [wrap(t, max(width - 0.45, 1.0), FONT - 1, em=0.55) for t in ls]
    title = wrap(title, width, FONT - 1) if title else title
    ncol = _columns(ls, width)
    from matplotlib.transforms import ScaledTranslation

    # anchored a fixed distance under the axes (below its tick labels and x label), not a
    # fraction of the axes' height, which shrinks with the panels
    below = ax.transAxes + ScaledTranslation(0, -BELOW_AXES, ax.figure.dpi_scale_trans)
    ax.legend(hs, ls, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below,
              borderaxespad=0.0, title=title, ncol=ncol, alignment="left", columnspacing=1.0,
              handlelength=1.6)
    _grow(ax.figure, ("below", round(ax.get_position().y0, 3)),
          legend_height(ls, ncol, title) + BELOW_AXES)


def legend_in(ax, entries: Sequence[tuple[str, str]] = (),
              keys: Sequence[tuple[str, dict]] = (), title: str | None = None,
              handles: Sequence | None = None, labels: Sequence[str] | None = None) -> None:
    """A legend filling ``ax``, a spare cell of a panel grid (its axis turned off): the
    legend takes the room of a panel that holds no data instead of squeezing the others."""
    hs, ls = _handles(entries, keys, handles, labels)
    ax.set_visible(True)
    ax.set_axis_off()
    if not hs:
        return
    width = _column_width(ax)
    ls = [wrap(t, max(width - 0.45, 1.0), FONT - 1, em=0.55) for t in ls]
    title = wrap(title, width, FONT - 1) if title else title
    ax.legend(hs, ls, loc="upper left", bbox_to_anchor=(0.0, 1.0), borderaxespad=0.0,
              title=title, alignment="left")


def figure_legend(fig, entries: Sequence[tuple[str, str]] = (),
                  keys: Sequence[tuple[str, dict]] = (), title: str | None = None,
                  handles: Sequence | None = None, labels: Sequence[str] | None = None) -> None:
    """One legend for the whole figure (a Figure or SubFigure), below all its panels, in as
    many columns as fit the figure's width (constrained layout makes room for it)."""
    hs, ls = _handles(entries, keys, handles, labels)
    if not hs:
        return
    width = fig.get_figwidth() if hasattr(fig, "get_figwidth") else \
        fig.bbox.width / fig.figure.dpi
    ncol = _columns(ls, width - 0.3)
    fig.legend(hs, ls, loc="outside lower center", title=title, ncol=ncol,
               alignment="center", columnspacing=1.2, handlelength=1.8)
    _grow(fig, "figure", legend_height(ls, ncol, title))


MEASURED_STYLE = {"ls": "-", "marker": "o", "ms": 3}
THEORY_STYLE = {"ls": "--"}
