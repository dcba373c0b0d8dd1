"""What a reader sees of a dashboard's charts, read from the page as Chromium draws it.

ECharts draws its charts on canvases: an axis's "R$ 50k" is not in the page's text. A script
added before the page loads records every text a canvas draws (`fillText`) with its box on
the page (the text's measured ink, through the canvas's transform, rotation included), and
starts a canvas's list afresh when the canvas is cleared whole for a new frame. From those
boxes and the chart holders' own boxes this module finds what makes a reader squint:

- two texts of one chart that overlap, or stand side by side closer than a few pixels
  (ticks running into each other),
- a text that leaves its chart's box (a tick cut at the card's edge),
- the same label twice in a row on one axis (ticks with too few decimals),
- a warning icon in a chart's header (Superset's "row limit reached" among them).

(tests/superset/test_browser.py runs it on every dashboard at the widths they are laid out for.)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

# Recorded per canvas; `window.__olistTexts()` answers the last frame of every canvas on the
# page: [{chart, text, corners: [[x, y] x 4], anchor: [x, y], align, rotated, shown}], in page
# pixels; `shown` is the box of the canvas that shows on the page (cut by the boxes around it
# that hide what overflows them, the chart's card among them).
RECORDER = """
(() => {
  const frames = new WeakMap();
  const canvases = new Set();
  const P = CanvasRenderingContext2D.prototype;
  const clearRect = P.clearRect;
  P.clearRect = function (x, y, w, h) {
    const c = this.canvas, t = this.getTransform();
    const fx = t.a * x + t.e, fy = t.d * y + t.f;
    if (fx <= 0.5 && fy <= 0.5 && fx + t.a * w >= c.width - 0.5 && fy + t.d * h >= c.height - 0.5) frames.set(c, []);
    return clearRect.apply(this, arguments);
  };
  const fillText = P.fillText;
  P.fillText = function (text, x, y) {
    const c = this.canvas;
    if (c instanceof HTMLCanvasElement && String(text).trim()) {
      const m = this.measureText(text), t = this.getTransform();
      const local = [
        [x - m.actualBoundingBoxLeft, y - m.actualBoundingBoxAscent],
        [x + m.actualBoundingBoxRight, y - m.actualBoundingBoxAscent],
        [x + m.actualBoundingBoxRight, y + m.actualBoundingBoxDescent],
        [x - m.actualBoundingBoxLeft, y + m.actualBoundingBoxDescent],
      ];
      const device = local.map(([u, v]) => [t.a * u + t.c * v + t.e, t.b * u + t.d * v + t.f]);
      const anchor = [t.a * x + t.c * y + t.e, t.b * x + t.d * y + t.f];
      if (!frames.has(c)) frames.set(c, []);
      frames.get(c).push({ text: String(text), device, anchor, align: this.textAlign, rotated: Math.abs(t.b) > 1e-6 });
      canvases.add(c);
    }
    return fillText.apply(this, arguments);
  };
  window.__olistTexts = () => {
    const out = [];
    for (const c of canvases) {
      if (!c.isConnected) continue;
      const holder = c.closest("[data-test='dashboard-component-chart-holder']");
      const name = holder && holder.querySelector("[data-test-chart-name]");
      const r = c.getBoundingClientRect(), sx = r.width / c.width, sy = r.height / c.height;
      const page = ([u, v]) => [r.left + window.scrollX + u * sx, r.top + window.scrollY + v * sy];
      // what of the canvas shows: its box, cut by every box around it that hides its overflow
      let [left, top, right, bottom] = [r.left, r.top, r.right, r.bottom];
      for (let e = c.parentElement; e && e !== document.body; e = e.parentElement) {
        const style = getComputedStyle(e);
        if (style.overflowX !== "visible" || style.overflowY !== "visible") {
          const b = e.getBoundingClientRect();
          [left, top, right, bottom] = [Math.max(left, b.left), Math.max(top, b.top), Math.min(right, b.right), Math.min(bottom, b.bottom)];
        }
        if (e === holder) break;
      }
      const shown = [left + window.scrollX, top + window.scrollY, right + window.scrollX, bottom + window.scrollY];
      const seen = new Set();
      for (const d of frames.get(c) || []) {
        const key = d.text + "|" + d.anchor.join(",");
        if (seen.has(key)) continue; // a label drawn twice in place (a halo, then the text)
        seen.add(key);
        out.push({ chart: name ? name.getAttribute("data-test-chart-name") : null, text: d.text,
                   corners: d.device.map(page), anchor: page(d.anchor), align: d.align, rotated: d.rotated, shown });
      }
    }
    return out;
  };
  window.__olistCharts = () => [...document.querySelectorAll("[data-test='dashboard-component-chart-holder']")].map((h) => {
    const name = h.querySelector("[data-test-chart-name]");
    const header = h.querySelector("[data-test='slice-header'], .header-title, .chart-header") || h;
    const warnings = [...header.querySelectorAll("[aria-label='warning'], .anticon-warning, [aria-label='exclamation-circle']")];
    return { chart: name ? name.getAttribute("data-test-chart-name") : null,
             warnings: warnings.map((w) => w.getAttribute("aria-label")) };
  });
})();
"""

OVERLAP_PX = 0.5  # two boxes overlap when they cut into each other deeper than this
GAP_PX = 4  # side by side, two texts closer than a space (3.4 px at 12 px) run into each other
OUTSIDE_PX = 0.5  # a text leaves its chart when it pokes out further than this


@dataclass(frozen=True)
class Label:
    chart: str
    text: str
    corners: tuple[tuple[float, float], ...]
    anchor: tuple[float, float]
    align: str
    rotated: bool
    shown: tuple[float, float, float, float]

    @property
    def box(self) -> tuple[float, float, float, float]:
        xs, ys = [x for x, _ in self.corners], [y for _, y in self.corners]
        return min(xs), min(ys), max(xs), max(ys)


@dataclass(frozen=True)
class Fault:
    chart: str
    kind: str  # overlap, outside, repeated, warning
    detail: str

    def __str__(self) -> str:
        return f"{self.chart}: {self.kind}: {self.detail}"


def labels(page) -> list[Label]:
    """The texts the page's canvases show now (Browser(read_charts=True) adds the recorder)."""
    return [
        Label(
            t["chart"] or "?", t["text"], tuple(map(tuple, t["corners"])), tuple(t["anchor"]), t["align"], t["rotated"], tuple(t["shown"])
        )
        for t in page.evaluate("window.__olistTexts()")
    ]


def faults(page) -> list[Fault]:
    """Everything on the page that a reader would squint at (the module's list)."""
    charts = page.evaluate("window.__olistCharts()")
    found = [Fault(c["chart"], "warning", ", ".join(map(str, c["warnings"]))) for c in charts if c["warnings"]]
    by_chart: dict[str, list[Label]] = {}
    for label in labels(page):
        by_chart.setdefault(label.chart, []).append(label)
    for chart, drawn in by_chart.items():
        found += overlaps(chart, drawn)
        found += outside(chart, drawn)
        found += repeated(chart, drawn)
    return found


def overlaps(chart: str, drawn: list[Label]) -> list[Fault]:
    return [
        Fault(chart, "overlap", f"{a.text!r} and {b.text!r}")
        for a, b in itertools.combinations(drawn, 2)
        if _penetration(_widened(a.corners), _widened(b.corners)) > OVERLAP_PX
    ]


def _widened(corners: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    """A text's box with half the least gap added before and after it, along its baseline (its
    corners run top left, top right, bottom right, bottom left as the text reads)."""
    (x0, y0), (x1, y1) = corners[0], corners[1]
    length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 or 1.0
    ux, uy = (x1 - x0) / length * GAP_PX / 2, (y1 - y0) / length * GAP_PX / 2
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = corners
    return ((ax - ux, ay - uy), (bx + ux, by + uy), (cx + ux, cy + uy), (dx - ux, dy - uy))


def outside(chart: str, drawn: list[Label]) -> list[Fault]:
    found = []
    for label in drawn:
        left, top, right, bottom = label.shown
        x0, y0, x1, y1 = label.box
        poke = max(left - x0, top - y0, x1 - right, y1 - bottom)
        if poke > OUTSIDE_PX:
            found.append(Fault(chart, "outside", f"{label.text!r} leaves the chart by {poke:.1f} px"))
    return found


def repeated(chart: str, drawn: list[Label]) -> list[Fault]:
    """The same text twice in a row along an axis: the labels that share a baseline (a
    horizontal axis) or a right-aligned edge (a vertical axis's ticks), three or more of them."""
    rows: dict[tuple[str, int], list[Label]] = {}
    for label in drawn:
        if label.rotated:
            continue
        rows.setdefault(("row", round(label.anchor[1])), []).append(label)
        if label.align in ("right", "end"):
            rows.setdefault(("column", round(label.anchor[0])), []).append(label)
    found = []
    for (kind, _), line in rows.items():
        if len(line) < 3:
            continue
        along = sorted(line, key=lambda t: t.anchor[0] if kind == "row" else t.anchor[1])
        found += [Fault(chart, "repeated", f"{a.text!r} twice in a row") for a, b in zip(along, along[1:]) if a.text == b.text]
    return found


def _penetration(a: tuple[tuple[float, float], ...], b: tuple[tuple[float, float], ...]) -> float:
    """How deep two convex quadrilaterals cut into each other (0 when apart): the least overlap
    of their projections on the axes of their edges (the separating axis theorem)."""
    depth = float("inf")
    for quad in (a, b):
        for (x0, y0), (x1, y1) in zip(quad, quad[1:] + quad[:1]):
            nx, ny = y0 - y1, x1 - x0
            norm = (nx * nx + ny * ny) ** 0.5
            if norm == 0:
                continue
            nx, ny = nx / norm, ny / norm
            pa = [x * nx + y * ny for x, y in a]
            pb = [x * nx + y * ny for x, y in b]
            depth = min(depth, min(max(pa), max(pb)) - max(min(pa), min(pb)))
            if depth <= 0:
                return 0.0
    return depth
