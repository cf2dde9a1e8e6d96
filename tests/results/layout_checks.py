"""Layout checks of a figure for the plot tests: it fits a page and reads in print."""

from __future__ import annotations

import numpy as np
from matplotlib.text import Text

from gradstats.results.plots import style

DATA_GIDS = ("measured", "predicted")  # artists that carry a dataset's numbers
MIN_AXES = (1.0, 0.8)  # inches: a plot area smaller than this is unreadable in print
MIN_AREA_SHARE = 0.25  # of the figure's area, the plot areas together at least this


def _has_data(ax) -> bool:
    artists = [*ax.get_lines(), *ax.collections]
    artists += [c.lines[0] for c in ax.containers if getattr(c, "lines", None)
                and c.lines[0] is not None]
    return any(a.get_gid() in DATA_GIDS for a in artists)


def _overlap(a, b, tol: float = 1.0) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tol) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tol)


def _legends(fig) -> list:
    found = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for sub in [fig, *fig.subfigs]:
        found += list(sub.legends)
    return found


def _drawn_styles(fig) -> set[str]:
    """Line styles of the lines drawn with data (not legend handles) in the figure."""
    return {ln.get_linestyle() for ax in fig.axes for ln in ax.get_lines()
            if ln.get_gid() is not None and len(np.atleast_1d(ln.get_xdata()))}


def _shown_ticks(ax, axis: str) -> list:
    """The tick labels of ``axis`` that are drawn (inside the view limits)."""
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    k = 0 if axis == "x" else 1
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t for t in ticks if lo <= t.get_position()[k] <= hi]


def check_layout(fig) -> None:
    """The figure fits a page and reads in print: no visible text outside the figure; at most
    `style.MAX_WIDTH` wide; no legend over a panel or an axis label; no axes title over another title or
    panel; every visible panel holds data; plot areas at least `MIN_AXES` and together
    `MIN_AREA_SHARE` of the figure; the first panel of each row has y tick labels; every
    dashed/dotted/dash-dot key of a legend has a line of that style drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    tight, box = fig.get_tightbbox(renderer), fig.bbox_inches  # inches: what is drawn
    if not (tight.x0 >= box.x0 - 0.02 and tight.x1 <= box.x1 + 0.02
            and tight.y0 >= box.y0 - 0.02 and tight.y1 <= box.y1 + 0.02):
        outside = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()
                   and not fig.bbox.contains(*t.get_window_extent(renderer).p0)]
        raise AssertionError(f"drawn outside the figure ({tight} vs {box}): {outside[:5]}")
    width, height = fig.get_size_inches()
    assert width <= style.MAX_WIDTH + 0.01, f"{width:.2f} in wide: more than a page"
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison  # not a legend's cell
            and ax.get_label() != "<colorbar>"]
    boxes = [ax.get_window_extent(renderer) for ax in axes]
    labels = [t for ax in axes for t in (ax.xaxis.label, ax.yaxis.label, ax.title,
                                         *_shown_ticks(ax, "x"), *_shown_ticks(ax, "y"))
              if t.get_visible() and t.get_text()]
    label_boxes = [t.get_window_extent(renderer) for t in labels]
    for legend in _legends(fig):
        lb = legend.get_window_extent(renderer)
        for pb in boxes:
            assert not _overlap(lb, pb), "a legend covers a panel"
        for text, tb in zip(labels, label_boxes, strict=True):
            assert not _overlap(lb, tb), f"a legend covers the label {text.get_text()!r}"
    titles = [(ax, ax.title.get_window_extent(renderer)) for ax in axes if ax.get_title()]
    for n, (ax, tb) in enumerate(titles):
        for other, ob in titles[n + 1:]:
            assert not _overlap(tb, ob), f"titles collide: {ax.get_title()!r}, {other.get_title()!r}"
        for other, pb in zip(axes, boxes, strict=True):
            assert other is ax or not _overlap(tb, pb), f"title over a panel: {ax.get_title()!r}"
    dpi = fig.dpi
    area = 0.0
    for ax, pb in zip(axes, boxes, strict=True):
        assert _has_data(ax), f"an empty panel: {ax.get_title()!r}"
        w, h = pb.width / dpi, pb.height / dpi
        assert w >= MIN_AXES[0] and h >= MIN_AXES[1], \
            f"plot area {w:.2f} x {h:.2f} in: squashed ({ax.get_title()!r})"
        area += w * h
    assert area >= MIN_AREA_SHARE * width * height, \
        f"plot areas {area:.1f} of {width * height:.1f} in^2: legends or titles crowd them out"
    rows: dict[float, list] = {}
    for ax, pb in zip(axes, boxes, strict=True):
        rows.setdefault(round(pb.y0), []).append((pb.x0, ax))
    for row in rows.values():  # the y axis of each row's first panel is read: labelled
        ax = min(row, key=lambda pair: pair[0])[1]
        lo, hi = sorted(ax.get_ylim())
        labels = [t for t in ax.get_yticklabels() if t.get_visible() and t.get_text()
                  and lo <= t.get_position()[1] <= hi]
        assert len(labels) >= 2, f"y axis without tick labels: {ax.get_title()!r}"
    drawn = _drawn_styles(fig)
    for legend in _legends(fig):
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
            ls = handle.get_linestyle() if hasattr(handle, "get_linestyle") else "-"
            if ls in ("--", ":", "-."):
                assert ls in drawn, f"legend key {text.get_text()!r}: no {ls} line drawn"
