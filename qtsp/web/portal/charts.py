"""Charts as server-side SVG: no script, no inline style (the CSP allows neither), only numbers and
escaped labels. Colours come from CSS classes in static/portal.css."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 200, 40, 28, 12


def _axis(top: int) -> list[str]:
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    parts = [f'<line class="axis" x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - PAD_BOTTOM}"/>']
    for fraction in (0.0, 0.5, 1.0):
        y = HEIGHT - PAD_BOTTOM - fraction * plot_h
        parts.append(f'<text class="tick" x="{PAD_LEFT - 6}" y="{y + 4:.0f}" text-anchor="end">{round(top * fraction)}</text>')
    return parts


def grouped_bars(title: str, labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]]) -> Markup:
    """Bars per label, one per series (name, css class, values); every ``step``-th label written under it."""
    count = max(len(labels), 1)
    top = max([1, *(v for _, _, values in series for v in values)])
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = (WIDTH - PAD_LEFT) / count
    bar = max(slot / (len(series) + 1), 1.0)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>', *_axis(top)]
    step = max(1, count // 8)
    for i, label in enumerate(labels):
        x0 = PAD_LEFT + i * slot + bar / 2
        for j, (name, css, values) in enumerate(series):
            value = values[i] if i < len(values) else 0
            h = plot_h * value / top
            parts.append(f'<rect class="{escape(css)}" x="{x0 + j * bar:.1f}" y="{HEIGHT - PAD_BOTTOM - h:.1f}" '
                         f'width="{bar * 0.9:.1f}" height="{h:.1f}"><title>{escape(label)}: {value} {escape(name)}</title></rect>')
        if i % step == 0:
            parts.append(f'<text class="tick" x="{x0 + bar * len(series) / 2:.1f}" y="{HEIGHT - 8}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bars(title: str, rows: Sequence[tuple[str, int]]) -> Markup:
    """One bar per (label, value), largest first."""
    rows = sorted(rows, key=lambda r: -r[1])[:12]
    top = max([1, *(v for _, v in rows)])
    line = 24
    height = max(line * len(rows) + 8, 40)
    left = 220
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    if not rows:
        parts.append(f'<text class="tick" x="{WIDTH / 2:.0f}" y="24" text-anchor="middle">no requests counted yet</text>')
    for i, (label, value) in enumerate(rows):
        y = 4 + i * line
        w = (WIDTH - left - 60) * value / top
        parts.append(f'<text class="tick" x="{left - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
                     f'<rect class="bar-ocsp" x="{left}" y="{y + 3}" width="{w:.1f}" height="{line - 8}"/>'
                     f'<text class="tick" x="{left + w + 6:.1f}" y="{y + 16}">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
