"""The console's SVG charts: well-formed, labelled, proportional, escaped, without script."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from fundline.console import charts
from fundline.console.charts import Bar

NS = {"svg": charts.SVG_NS}


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def bar_widths(svg: ET.Element) -> list[float]:
    return [
        float(rect.attrib["width"].removesuffix("%"))
        for rect in svg.iterfind(".//svg:rect[@class='bar']", NS)
    ]


def bar_heights(svg: ET.Element) -> list[float]:
    return [float(r.attrib["height"]) for r in svg.iterfind(".//svg:rect[@class='bar']", NS)]


def texts(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iterfind(".//svg:text", NS)]


def test_a_chart_is_an_image_with_a_title_labelled_by_its_caption() -> None:
    for markup in (
        charts.hbars([Bar("NEW", 3, "3")], title="Funnel", labelledby="funnel-caption"),
        charts.columns(
            [Bar("Jan", 3, "3")], title="Funnel", labelledby="funnel-caption", scale="3"
        ),
    ):
        svg = parse(markup)
        assert svg.tag == f"{{{charts.SVG_NS}}}svg"
        assert svg.attrib["role"] == "img"
        assert svg.attrib["aria-labelledby"] == "funnel-caption"
        first = svg[0]
        assert first.tag == f"{{{charts.SVG_NS}}}title"
        assert first.text == "Funnel"
        assert not svg.findall(".//svg:script", NS)
        assert "style" not in markup
        assert "<script" not in markup


def test_horizontal_bars_are_proportional_to_the_largest_and_labelled() -> None:
    svg = parse(
        charts.hbars(
            [Bar("PAID", 400, "$4.00"), Bar("LATE", 100, "$1.00"), Bar("NEW", 300, "$3.00")],
            title="t",
            labelledby="c",
        )
    )
    assert bar_widths(svg) == [100.0, 25.0, 75.0]
    assert texts(svg) == ["PAID", "$4.00", "LATE", "$1.00", "NEW", "$3.00"]
    # Each row says what it is in a tooltip too.
    tips = [t.text for t in svg.iterfind("./svg:g/svg:title", NS)]
    assert tips == ["PAID: $4.00", "LATE: $1.00", "NEW: $3.00"]


def test_columns_are_proportional_and_carry_their_labels_and_notes() -> None:
    svg = parse(
        charts.columns(
            [Bar("Dec", 50, "$0.50"), Bar("Jan", 200, "$2.00"), Bar("Feb", 0, "$0.00")],
            title="t",
            labelledby="c",
            scale="Highest: $2.00",
            notes=["2026", "2027", ""],
        )
    )
    heights = bar_heights(svg)
    assert heights == [charts.PLOT_HEIGHT / 4, float(charts.PLOT_HEIGHT), 0.0]
    assert texts(svg) == ["Highest: $2.00", "Dec", "2026", "Jan", "2027", "Feb"]
    # Every column stands on the same baseline.
    bottoms = [
        float(r.attrib["y"]) + float(r.attrib["height"])
        for r in svg.iterfind(".//svg:rect[@class='bar']", NS)
    ]
    assert bottoms == [float(charts.PLOT_TOP + charts.PLOT_HEIGHT)] * 3


@pytest.mark.parametrize("values", [[0, 0, 0], [0], []])
def test_nothing_to_compare_draws_empty_bars(values: list[int]) -> None:
    bars = [Bar(f"b{i}", v, "0") for i, v in enumerate(values)]
    hbars = parse(charts.hbars(bars, title="t", labelledby="c"))
    assert bar_widths(hbars) == [0.0] * len(values)
    columns = parse(charts.columns(bars, title="t", labelledby="c", scale="0"))
    assert bar_heights(columns) == [0.0] * len(values)
    if not values:
        assert texts(hbars) == ["Nothing to show"]


def test_a_single_value_fills_the_chart_and_negatives_draw_nothing() -> None:
    assert bar_widths(parse(charts.hbars([Bar("a", 7, "7")], title="t", labelledby="c"))) == [100.0]
    svg = parse(charts.hbars([Bar("a", -5, "-5"), Bar("b", 10, "10")], title="t", labelledby="c"))
    assert bar_widths(svg) == [0.0, 100.0]
    assert charts.share(1, 3) == pytest.approx(33.333, abs=0.001)


def test_every_label_and_title_is_escaped() -> None:
    nasty = '<script>alert("x")</script> & Sons'
    markup = charts.hbars(
        [Bar(nasty, 1, f"{nasty} text")], title=f"{nasty} title", labelledby='c" onload="x'
    )
    assert "<script>" not in markup
    svg = parse(markup)  # still well-formed XML
    assert svg[0].text == f"{nasty} title"
    assert texts(svg) == [nasty, f"{nasty} text"]
    assert svg.attrib["aria-labelledby"] == 'c" onload="x'
    assert "onload" not in svg.attrib
    columns = parse(
        charts.columns(
            [Bar(nasty, 1, nasty)], title="t", labelledby="c", scale=nasty, notes=[nasty]
        )
    )
    assert texts(columns) == [nasty, nasty, nasty]


def test_long_labels_are_shortened_on_the_chart_and_kept_whole_in_the_tooltip() -> None:
    name = "Consolidated Amalgamated International Holdings of Delaware LLC"
    svg = parse(charts.hbars([Bar(name, 1, "$1")], title="t", labelledby="c"))
    label = texts(svg)[0]
    assert len(label) == charts.LABEL_CHARS
    assert label.endswith("…")
    assert svg.find("./svg:g/svg:title", NS).text == f"{name}: $1"  # type: ignore[union-attr]
