"""Charts as inline SVG, drawn on the server.

Why not a chart library: the summary must read with JavaScript off and open from an
e-mail attachment, so the charts cannot need a script; a few bar shapes do not justify
vendoring 200 KB of one. Inline SVG costs nothing to load, prints, scales, takes its
colours from the page's CSS (dark mode included), and each bar carries a <title> (a
tooltip, read by screen readers). Every chart on the page also has its numbers in a
table beside it, which is what assistive technology and copy-paste should use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str          # the value as printed


@dataclass(frozen=True)
class Series:
    name: str
    css: str           # a class of page.css giving the fill (s0 … s3)
    values: Sequence[float]


def _short(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def bars(caption_id: str, rows: Sequence[Bar], css: str = "s0") -> Markup:
    """Horizontal bars, one per row, longest = the largest value."""
    width, label_w, row_h = 640, 200, 22
    bar_w = width - label_w - 100
    height = row_h * len(rows) + 4
    top = max((r.value for r in rows), default=0) or 1
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-labelledby="{escape(caption_id)}">']
    for i, row in enumerate(rows):
        y = i * row_h
        w = bar_w * row.value / top
        out.append(f'<g><title>{escape(row.label)}: {escape(row.text)}</title>'
                   f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">'
                   f'{escape(_short(row.label, 30))}</text>'
                   f'<rect class="{css}" x="{label_w}" y="{y + 4}" width="{w:.1f}" '
                   f'height="{row_h - 6}"/>'
                   f'<text class="value" x="{label_w + w + 5:.1f}" y="{y + 16}">'
                   f'{escape(row.text)}</text></g>')
    out.append("</svg>")
    return Markup("".join(out))


def columns(caption_id: str, categories: Sequence[str], series: Sequence[Series], *,
            fmt: Callable[[float], str], stacked: bool = False) -> Markup:
    """Vertical columns per category: one per series side by side, or stacked."""
    left, top_pad, plot_h, bottom = 70, 24 if len(series) > 1 else 8, 170, 46
    # Columns at most ~40 px wide (a single day must not fill the page), at least ~10.
    bars_per_slot = 1 if stacked else len(series)
    slot = min(520 / max(len(categories), 1), 40.0 * bars_per_slot + 16)
    slot = max(slot, 10.0 * bars_per_slot + 6)
    legend_w = sum(24 + 7 * len(s.name) for s in series) if len(series) > 1 else 0
    plot_w = max(slot * len(categories), 240.0, legend_w - left + 20)
    width, height = left + plot_w + 10, top_pad + plot_h + bottom
    sums = ([sum(s.values[i] for s in series) for i in range(len(categories))] if stacked
            else [v for s in series for v in s.values])
    peak = max(sums, default=0) or 1
    step = slot
    bar_w = step * 0.8 / bars_per_slot
    base = top_pad + plot_h
    out = [f'<svg class="chart" viewBox="0 0 {width:.0f} {height}" width="{width:.0f}" '
           f'height="{height}" role="img" aria-labelledby="{escape(caption_id)}">',
           f'<line class="axis" x1="{left}" y1="{base}" x2="{left + plot_w:.1f}" y2="{base}"/>',
           f'<text x="{left - 6}" y="{top_pad + 10}" text-anchor="end">{escape(fmt(peak))}</text>',
           f'<text x="{left - 6}" y="{base}" text-anchor="end">{escape(fmt(0))}</text>']
    if len(series) > 1:
        x = 10.0
        for s in series:
            out.append(f'<rect class="{s.css}" x="{x}" y="4" width="12" height="12"/>'
                       f'<text x="{x + 16}" y="15">{escape(s.name)}</text>')
            x += 24 + 7 * len(s.name)
    label_every = max(1, round(len(categories) / (plot_w / 60)))
    for i, category in enumerate(categories):
        x0 = left + i * step + step * 0.1
        stack = 0.0
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / peak
            x = x0 if stacked else x0 + j * bar_w
            y = base - h - (plot_h * stack / peak if stacked else 0.0)
            out.append(f'<rect class="{s.css}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                       f'height="{h:.1f}"><title>{escape(category)} — {escape(s.name)}: '
                       f'{escape(fmt(value))}</title></rect>')
            stack += value if stacked else 0
        if i % label_every == 0:
            out.append(f'<text x="{x0 + step * 0.4:.1f}" y="{base + 16}" '
                       f'text-anchor="middle">{escape(_short(category, 12))}</text>')
    out.append("</svg>")
    return Markup("".join(out))
