"""The checks of platform/bi/superset/legibility.py on labels placed by hand: each fault it
names is found where it is, and nothing is found on labels that read cleanly. (The browser
tests run the same checks on what Chromium draws: tests/superset/test_browser.py.)"""

from __future__ import annotations

import math

from olist_bi.bi.superset.legibility import Label, outside, overlaps, repeated

CHART = (0.0, 0.0, 400.0, 300.0)  # the part of the chart's canvas that shows


def label(text: str, x: float, y: float, width: float = 30, height: float = 10, align: str = "center", degrees: float = 0) -> Label:
    """A label whose box is `width` x `height` around (x, y), turned by `degrees` about that point."""
    turn = math.radians(degrees)
    corners = []
    for dx, dy in ((-width / 2, -height / 2), (width / 2, -height / 2), (width / 2, height / 2), (-width / 2, height / 2)):
        corners.append((x + dx * math.cos(turn) - dy * math.sin(turn), y + dx * math.sin(turn) + dy * math.cos(turn)))
    return Label("c", text, tuple(corners), (x, y), align, degrees != 0, CHART)


def test_ticks_apart_read_cleanly():
    ticks = [label(f"R$ {i}k", 50 + 60 * i, 290) for i in range(5)]
    assert overlaps("c", ticks) == [] and outside("c", ticks) == [] and repeated("c", ticks) == []


def test_ticks_that_touch_or_stand_closer_than_a_space_run_into_each_other():
    crowded = [label("R$ 0", 50, 290), label("R$ 50k", 82, 290)]  # 2 px apart
    assert [f.kind for f in overlaps("c", crowded)] == ["overlap"]
    assert overlaps("c", [label("R$ 0", 50, 290), label("R$ 50k", 86, 290)]) == []  # 6 px apart


def test_labels_stacked_on_a_vertical_axis_are_apart_when_their_boxes_are():
    # lines of text a few pixels apart read well: the least gap is along a label's baseline only
    assert overlaps("c", [label("R$ 0", 30, 100, align="right"), label("R$ 50", 30, 113, align="right")]) == []
    assert overlaps("c", [label("SP", 100, 280, degrees=90), label("RJ", 113, 280, degrees=90)]) == []
    assert len(overlaps("c", [label("SP", 100, 280, degrees=90), label("RJ", 108, 280, degrees=90)])) == 1


def test_slanted_labels_overlap_only_where_their_boxes_do():
    # 45-degree labels 20 px apart: their straight boxes would overlap, the labels do not
    slanted = [label("Bed Bath Table", 100 + 20 * i, 250, width=80, height=10, degrees=45) for i in range(3)]
    assert overlaps("c", slanted) == []
    assert len(overlaps("c", [label("Bed Bath Table", 100, 250, 80, 10, degrees=45), label("Toys", 104, 250, degrees=45)])) == 1


def test_a_label_cut_at_the_charts_edge_is_outside():
    (fault,) = outside("c", [label("R$ 1.5M", 395, 290)])
    assert fault.kind == "outside" and "R$ 1.5M" in fault.detail and "10.0 px" in fault.detail
    assert [f.detail for f in outside("c", [label("April", 100, 298)])] == ["'April' leaves the chart by 3.0 px"]


def test_the_same_tick_twice_in_a_row_is_repeated():
    axis = [label(t, 30, 50 + 40 * i, align="right") for i, t in enumerate(["0.2%", "0.1%", "0.1%", "0.1%", "0.0%"])]
    assert [f.kind for f in repeated("c", axis)] == ["repeated", "repeated"]
    months = [label(t, 60 + 50 * i, 290) for i, t in enumerate(["April", "July", "October", "July"])]
    assert repeated("c", months) == []  # the same name, not side by side
    assert repeated("c", [label(t, 30, 50 + 40 * i, align="right") for i, t in enumerate(["0.2%", "0.15%", "0.1%", "0.05%"])]) == []
