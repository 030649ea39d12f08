"""Small inline-SVG charts for the console pages: a time axis, lines, a band, markers, bars.

Pure Python over lists (no matplotlib/pandas at render time), so a page with a dozen charts
renders in a few milliseconds. Every label is escaped; the SVG is inlined in an autoescaped
template through ``Markup`` only after this module built it from numbers and escaped text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from markupsafe import Markup

W, H = 760, 170
PAD_L, PAD_R, PAD_T, PAD_B = 52, 12, 14, 22
COLORS = ("#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2")


@dataclass
class Series:
    label: str
    points: Sequence[tuple[datetime, float | None]]
    color: str = ""


@dataclass
class Chart:
    start: datetime
    end: datetime
    title: str = ""
    unit: str = ""
    lines: list[Series] = field(default_factory=list)
    band: Sequence[tuple[datetime, float | None, float | None]] = ()  # (t, lower, upper)
    markers: Sequence[tuple[datetime, float, str]] = ()  # (t, y, tooltip): anomalies
    spans: Sequence[tuple[datetime, datetime, str]] = ()  # shaded intervals (incidents)
    ticks: Sequence[tuple[datetime, str]] = ()  # vertical event ticks (changes, alarms)
    bars: bool = False


def _fmt(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e3:
        return f"{v / 1e3:.1f}k"
    if a >= 10 or v == 0:
        return f"{v:.0f}"
    return f"{v:.2g}"


MAX_POINTS = 360  # per line: more points than pixels only add bytes


def downsample(points: Sequence[tuple[datetime, float | None]], limit: int = MAX_POINTS,
               ) -> list[tuple[datetime, float | None]]:
    """At most ``limit`` points: the maximum of each run (spikes survive, dips are smoothed)."""
    if len(points) <= limit:
        return list(points)
    step = -(-len(points) // limit)
    out: list[tuple[datetime, float | None]] = []
    for i in range(0, len(points), step):
        chunk = [v for _, v in points[i:i + step] if v is not None]
        out.append((points[i][0], max(chunk) if chunk else None))
    return out


def _downsample_band(band: Sequence[tuple[datetime, float | None, float | None]], limit: int = MAX_POINTS,
                     ) -> list[tuple[datetime, float | None, float | None]]:
    if len(band) <= limit:
        return list(band)
    step = -(-len(band) // limit)
    out: list[tuple[datetime, float | None, float | None]] = []
    for i in range(0, len(band), step):
        lows = [lo for _, lo, _ in band[i:i + step] if lo is not None]
        highs = [hi for _, _, hi in band[i:i + step] if hi is not None]
        out.append((band[i][0], min(lows) if lows else None, max(highs) if highs else None))
    return out


def render(chart: Chart, width: int = W, height: int = H) -> Markup:
    chart.lines = [Series(s.label, downsample(s.points), s.color) for s in chart.lines]
    chart.band = _downsample_band(chart.band)
    t0, t1 = chart.start.timestamp(), chart.end.timestamp()
    span = max(t1 - t0, 1.0)
    values: list[float] = [v for s in chart.lines for _, v in s.points if v is not None]
    values += [v for _, lo, hi in chart.band for v in (lo, hi) if v is not None]
    values += [y for _, y, _ in chart.markers]
    lo = min([*values, 0.0]) if values else 0.0
    hi = max(values) if values else 1.0
    if hi <= lo:
        hi = lo + 1.0
    hi += (hi - lo) * 0.05
    iw, ih = width - PAD_L - PAD_R, height - PAD_T - PAD_B

    def x(t: datetime) -> float:
        return PAD_L + (t.timestamp() - t0) / span * iw

    def y(v: float) -> float:
        return PAD_T + ih - (v - lo) / (hi - lo) * ih

    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
           f'xmlns="http://www.w3.org/2000/svg">']
    if chart.title:
        out.append(f"<title>{escape(chart.title)}</title>")
    for frac in (0.0, 0.5, 1.0):  # y grid
        v = lo + (hi - lo) * frac
        out.append(f'<line x1="{PAD_L}" x2="{width - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{PAD_L - 4}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="10" fill="#6b7280">'
                   f"{escape(_fmt(v))}{escape(chart.unit)}</text>")
    for i in range(5):  # x ticks
        t = t0 + span * i / 4
        label = datetime.fromtimestamp(t, tz=chart.start.tzinfo).strftime("%m-%d %H:%M")
        xx = PAD_L + iw * i / 4
        out.append(f'<text x="{xx:.1f}" y="{height - 6}" text-anchor="middle" font-size="10" fill="#6b7280">'
                   f"{label}</text>")
    for a, b, tip in chart.spans:
        xa, xb = max(x(a), PAD_L), min(x(b), width - PAD_R)
        if xb > xa:
            out.append(f'<rect x="{xa:.1f}" y="{PAD_T}" width="{xb - xa:.1f}" height="{ih}" fill="#fee2e2" '
                       f'opacity="0.6"><title>{escape(tip)}</title></rect>')
    band = [(x(t), y(lo_), y(hi_)) for t, lo_, hi_ in chart.band if lo_ is not None and hi_ is not None]
    if band:
        upper = " ".join(f"{px:.1f},{py:.1f}" for px, _, py in band)
        lower = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in reversed(band))
        out.append(f'<polygon points="{upper} {lower}" fill="#bfdbfe" opacity="0.55" class="band"/>')
    for i, s in enumerate(chart.lines):
        color = s.color or COLORS[i % len(COLORS)]
        pts = [(x(t), y(v)) for t, v in s.points if v is not None]
        if chart.bars:
            bw = max(iw / max(len(s.points), 1) - 1, 1)
            out.extend(f'<rect x="{px - bw / 2:.1f}" y="{py:.1f}" width="{bw:.1f}" height="{y(lo) - py:.1f}" '
                       f'fill="{color}"/>' for px, py in pts)
        elif pts:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.4">'
                       f"<title>{escape(s.label)}</title></polyline>")
    for at, label in chart.ticks:
        if chart.start <= at <= chart.end:
            out.append(f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{PAD_T}" y2="{PAD_T + ih}" stroke="#6b7280" '
                       f'stroke-dasharray="3,3"><title>{escape(label)}</title></line>')
    if len(chart.lines) > 1:  # legend, top right
        x_at = width - PAD_R
        for i, s in reversed(list(enumerate(chart.lines))):
            color = s.color or COLORS[i % len(COLORS)]
            label = escape(s.label)
            x_at -= 7 * len(s.label) + 16
            out.append(f'<rect x="{x_at:.0f}" y="3" width="9" height="9" fill="{color}"/>'
                       f'<text x="{x_at + 12:.0f}" y="11" font-size="10" fill="#374151">{label}</text>')
    for at, v, tip in chart.markers:
        out.append(f'<circle class="anomaly" cx="{x(at):.1f}" cy="{y(v):.1f}" r="3.2" fill="#dc2626">'
                   f"<title>{escape(tip)}</title></circle>")
    out.append("</svg>")
    return Markup("".join(out))


def sparkline(values: Sequence[float | None], width: int = 120, height: int = 24, color: str = "#2563eb") -> Markup:
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return Markup("")
    lo, hi = min(vals), max(vals)
    hi = hi if hi > lo else lo + 1
    step = width / (len(values) - 1)
    pts = " ".join(f"{i * step:.1f},{height - 2 - (v - lo) / (hi - lo) * (height - 4):.1f}"
                   for i, v in enumerate(values) if v is not None)
    return Markup(f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
                  f'xmlns="http://www.w3.org/2000/svg"><polyline points="{pts}" fill="none" stroke="{color}" '
                  f'stroke-width="1.5"/></svg>')
