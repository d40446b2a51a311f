"""Bar charts as inline SVG, drawn on the server: no script, no CDN, readable without CSS.

Every chart carries a ``<title>`` and a text description for screen readers, and each bar a
``<title>`` tooltip with its exact value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

PALETTE = ("#1f5fbf", "#d9822b", "#2e9e5b", "#a23b72", "#6b5bd2", "#8c6d1f", "#0f8b8d", "#c0392b")
"""Colour-blind-friendly enough for up to eight series; more wrap around."""


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    note: str = ""
    """Shown in the bar's tooltip after the value (e.g. cost)."""


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** (len(str(int(value))) - 1)
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * magnitude:
            return step * magnitude
    return 10.0 * magnitude


def _short(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:,.0f}"


def column_chart(
    bars: Sequence[Bar], *, chart_id: str, title: str, unit: str, every_nth_label: int = 5
) -> Markup:
    """Vertical bars over time (one per day); x labels every ``every_nth_label`` bars."""
    width, height, left, bottom, top = 720, 240, 56, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    # At least 0..4, so small counts still get whole-number grid lines.
    peak = _nice_max(max((bar.value for bar in bars), default=0.0) or 0.0)
    peak = max(peak, 4.0)
    slot = plot_w / max(len(bars), 1)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="t-{chart_id}" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="t-{chart_id}">{escape(title)}</title>'
    ]
    for i in range(5):  # grid lines and y labels
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9dde3"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6474">{_short(value)}</text>'
        )
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / peak
        x = left + i * slot + slot * 0.15
        note = f" ({escape(bar.note)})" if bar.note else ""
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{max(h, 0):.1f}" fill="{PALETTE[0]}"><title>{escape(bar.label)}: '
            f"{bar.value:,.0f} {escape(unit)}{note}</title></rect>"
        )
        if i % every_nth_label == 0 or i == len(bars) - 1:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{height - 10}" text-anchor="middle" '
                f'font-size="11" fill="#5b6474">{escape(bar.label[5:])}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def row_chart(bars: Sequence[Bar], *, chart_id: str, title: str, unit: str) -> Markup:
    """Horizontal bars, one per category (a model), largest first as given."""
    row_h, label_w, width = 28, 170, 720
    height = max(len(bars), 1) * row_h + 8
    peak = max((bar.value for bar in bars), default=0) or 1.0
    plot_w = width - label_w - 90
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="t-{chart_id}" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="t-{chart_id}">{escape(title)}</title>'
    ]
    for i, bar in enumerate(bars):
        y = 4 + i * row_h
        w = plot_w * bar.value / peak
        colour = PALETTE[i % len(PALETTE)]
        note = f" ({escape(bar.note)})" if bar.note else ""
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" font-size="13" '
            f'fill="#1d2430">{escape(bar.label[:24])}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 8}" '
            f'fill="{colour}"><title>{escape(bar.label)}: {bar.value:,.0f} {escape(unit)}'
            f"{note}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 18}" font-size="12" '
            f'fill="#5b6474">{_short(bar.value)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
