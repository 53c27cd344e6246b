"""Charts drawn on the server as inline SVG: no script, no chart library, no CDN.

Each chart is an ``<svg role="img">`` with a ``<title>`` and ``aria-labelledby`` naming the
caption the page writes beside it (the page follows every chart with its numbers as a table).
Widths are percentages of the chart's own width and text stays at its CSS size, so a chart
fills a phone's screen as it fills a desktop's without its labels shrinking; heights are
pixels. Every text that reaches the SVG is escaped here (``markupsafe``), so a business name
can hold ``<`` or ``&``. No ``style`` attribute: colours are SVG presentation attributes
(the console's CSP forbids inline styles), fonts come from ``console.css``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

SVG_NS = "http://www.w3.org/2000/svg"
BAR = "#1f5fbf"
TRACK = "#e8ecf2"
AXIS = "#9aa5b5"
# Horizontal bars: a line of text (label, and the value at the right), then the bar.
ROW_HEIGHT = 40
BAR_HEIGHT = 12
# Columns: the plot's height, room above it for the scale and below it for the labels.
PLOT_HEIGHT = 160
PLOT_TOP = 24
LABELS_HEIGHT = 36
LABEL_CHARS = 36


@dataclass(frozen=True)
class Bar:
    """One bar: what it is (``label``), its size (``value``, an int: minor units or a count)
    and how its value reads (``text``, e.g. ``"$1,200.00 · 3 invoices"``)."""

    label: str
    value: int
    text: str


def share(value: int, largest: int) -> float:
    """``value`` as a percentage of ``largest`` (0 … 100), nothing below zero, 0 when there is
    nothing to compare with."""
    if largest <= 0 or value <= 0:
        return 0.0
    return min(100.0, value * 100 / largest)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _svg(title: str, labelledby: str, height: int, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="{SVG_NS}" class="chart" role="img" width="100%" height="{height}" '
        f'aria-labelledby="{escape(labelledby)}"><title>{escape(title)}</title>'
    )
    return Markup(head + "".join(body) + "</svg>")


def hbars(bars: Sequence[Bar], *, title: str, labelledby: str) -> Markup:
    """Horizontal bars, one row each: its label and value text, then its bar, as long as its
    share of the largest value (a bar of zero is an empty track)."""
    largest = max((bar.value for bar in bars), default=0)
    body: list[str] = []
    for index, bar in enumerate(bars):
        top = index * ROW_HEIGHT
        width = share(bar.value, largest)
        body.append(
            f"<g><title>{escape(bar.label)}: {escape(bar.text)}</title>"
            f'<text x="0" y="{top + 14}">{escape(_short(bar.label))}</text>'
            f'<text x="100%" y="{top + 14}" text-anchor="end">{escape(bar.text)}</text>'
            f'<rect x="0" y="{top + 20}" width="100%" height="{BAR_HEIGHT}" fill="{TRACK}"/>'
            f'<rect class="bar" x="0" y="{top + 20}" width="{width:.2f}%" height="{BAR_HEIGHT}" '
            f'fill="{BAR}"/></g>'
        )
    if not bars:
        body.append('<text x="0" y="14">Nothing to show</text>')
    return _svg(title, labelledby, max(1, len(bars)) * ROW_HEIGHT, body)


def columns(
    bars: Sequence[Bar], *, title: str, labelledby: str, scale: str, notes: Sequence[str] = ()
) -> Markup:
    """Vertical columns over time, left to right, as tall as their share of the largest
    value; ``scale`` is what the top line reads (the largest value, written out), each
    column's label goes under it and ``notes`` (as many as the bars, may be empty strings)
    under that, e.g. the year under each January."""
    largest = max((bar.value for bar in bars), default=0)
    count = max(1, len(bars))
    slot = 100 / count
    bottom = PLOT_TOP + PLOT_HEIGHT
    body = [
        f'<text x="0" y="14">{escape(scale)}</text>',
        f'<line x1="0" y1="{PLOT_TOP}" x2="100%" y2="{PLOT_TOP}" stroke="{AXIS}" '
        'stroke-dasharray="3 3"/>',
        f'<line x1="0" y1="{bottom}" x2="100%" y2="{bottom}" stroke="{AXIS}"/>',
    ]
    for index, bar in enumerate(bars):
        height = PLOT_HEIGHT * share(bar.value, largest) / 100
        centre = slot * (index + 0.5)
        note = notes[index] if index < len(notes) else ""
        body.append(
            f"<g><title>{escape(bar.label)}: {escape(bar.text)}</title>"
            f'<rect class="bar" x="{slot * (index + 0.15):.2f}%" y="{bottom - height:.1f}" '
            f'width="{slot * 0.7:.2f}%" height="{height:.1f}" fill="{BAR}"/>'
            f'<text x="{centre:.2f}%" y="{bottom + 15}" text-anchor="middle">'
            f"{escape(bar.label)}</text>"
            + (
                f'<text x="{centre:.2f}%" y="{bottom + 30}" text-anchor="middle">'
                f"{escape(note)}</text>"
                if note
                else ""
            )
            + "</g>"
        )
    return _svg(title, labelledby, bottom + LABELS_HEIGHT, body)
