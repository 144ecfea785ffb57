"""Inline SVG line charts for the operations pages (no JavaScript, no chart library)."""
from __future__ import annotations

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777")


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, x_label: str = "",
               width: int = 640, height: int = 260) -> SafeString:
    """``series``: name -> [(x, y), …]; points with a missing value are simply left out."""
    series = {name: sorted((float(x), float(y)) for x, y in pts if x is not None and y is not None)
              for name, pts in series.items()}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return format_html('<p class="muted">{}: no data yet.</p>', title)
    left, right, top, bottom = 56, 160, 28, 36
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    if y0 == y1:
        y0, y1 = y0 - (abs(y0) or 1) * 0.1, y1 + (abs(y1) or 1) * 0.1
    pw, ph = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + ph - (y - y0) / (y1 - y0) * ph

    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
             f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>']
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{sy(y) + 4:.1f}" text-anchor="end" class="tick">{_fmt(y)}</text>')
    for x in sorted(set(xs))[:: max(1, len(set(xs)) // 10)]:
        parts.append(f'<text x="{sx(x):.1f}" y="{top + ph + 14}" text-anchor="middle" class="tick">{_fmt(x)}</text>')
    if x_label:
        parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 4}" text-anchor="middle" class="tick">'
                     f'{escape(x_label)}</text>')
    for n, (name, pts) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
                     f'<title>{escape(name)}</title></polyline>')
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}">'
                  f'<title>{escape(name)} @ {_fmt(x)}: {y:.4g}</title></circle>' for x, y in pts]
        ly = top + 12 + n * 16
        parts.append(f'<rect x="{left + pw + 10}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + pw + 24}" y="{ly + 1}" class="legend">{escape(name[:22])}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def flatten_numbers(data, prefix: str = "") -> dict[str, float]:
    """{"test": {"fusion": {"ndcg@20": 0.1}}} -> {"test.fusion.ndcg@20": 0.1}; non-numbers dropped."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten_numbers(v, f"{prefix}{k}."))
    elif isinstance(data, (int, float)) and not isinstance(data, bool) and data == data:
        out[prefix[:-1]] = float(data)
    return out
