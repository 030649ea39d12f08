"""The console's pages: one Jinja environment (autoescape on) over ``templates/``, rendered from
:mod:`aiops.console.data`. Routes live in :mod:`aiops.console.app`."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, Undefined
from markupsafe import Markup

from aiops.console import svg
from aiops.core.reporting import templates
from aiops.core.times import parse as _parse

TEMPLATES = Path(__file__).parent / "templates"
DASH = "\u2013"
NAV = [("/", "Overview"), ("/incidents", "Incidents"), ("/cost", "Cost"), ("/compliance", "Compliance"),
       ("/slos", "SLOs"), ("/audit", "Audit"), ("/status", "Stores")]


def _dt(value: Any) -> str:
    if value is None or isinstance(value, Undefined):
        return DASH
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or isinstance(value, Undefined):
        return DASH
    return f"{float(value) * 100:.{digits}f}%"


def _usd(value: Any) -> str:
    if value is None or isinstance(value, Undefined):
        return DASH
    return f"${float(value):,.2f}"


def _signed(value: Any) -> str:
    return "n/a" if value is None or isinstance(value, Undefined) else f"{float(value):+.1f}%"


def _duration(seconds: Any) -> str:
    if seconds is None or isinstance(seconds, Undefined):
        return DASH
    s = round(float(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s / 3600:.1f} h"


def _budget_class(value: float | None) -> str:
    if value is None:
        return ""
    return "bad" if value < 0.25 else ("warn" if value < 0.5 else "ok")


def _line_specs(lines: list[tuple[Any, ...]]) -> list[svg.Series]:
    return [svg.Series(label=str(spec[0]), points=spec[1], color=spec[2] if len(spec) > 2 else "") for spec in lines]


def _chart(start: datetime, end: datetime, title: str, lines: list[tuple[Any, ...]], *, band: Any = (),
           markers: Any = (), spans: Any = (), ticks: Any = (), unit: str = "", bars: bool = False) -> Markup:
    return svg.render(svg.Chart(start=start, end=end, title=title, unit=unit, lines=_line_specs(lines),
                                band=band or (), markers=markers or (), spans=spans or (), ticks=ticks or (),
                                bars=bars))




def _evidence_chart(metric: dict[str, Any]) -> Markup:
    pts = [(_parse(p["t"]), p["value"]) for p in metric.get("points", []) if p.get("value") is not None]
    if len(pts) < 2:
        return Markup("")
    band = [(_parse(p["t"]), p.get("lower"), p.get("upper")) for p in metric["points"]]
    marks = [(_parse(p["t"]), float(p["value"]), "outside the band") for p in metric["points"] if p.get("outside")]
    return _chart(pts[0][0], pts[-1][0], metric.get("series_id", ""), [("value", pts)], band=band, markers=marks)


def _incident_spans(rows: list[dict[str, Any]], end: datetime) -> list[tuple[datetime, datetime, str]]:
    return [(r["first_seen"], r.get("resolved_at") or end, f"{r['incident_id']}: {r['title']}") for r in rows]


def _change_ticks(changes: list[dict[str, Any]], alarms: Any) -> list[tuple[datetime, str]]:
    ticks = []
    for c in changes:
        try:
            ticks.append((_parse(str(c["t"])), f"change: {c.get('event')} by {c.get('who')}"))
        except (KeyError, ValueError):
            continue
    if isinstance(alarms, list):
        ticks += [(a["time"], f"alert: {a['title']} ({a['state']})") for a in alarms if a.get("state") == "firing"]
    return ticks


def _pct_points(points: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    return [(t, v * 100) for t, v in points]


def _burn_lines(burn: dict[str, list[tuple[datetime, float | None]]]) -> list[tuple[str, Any]]:
    return [(w, pts) for w, pts in burn.items()]


def _postmortem_html(markdown: str) -> Markup:
    """CommonMark with raw HTML disabled: stored text cannot inject markup into the page."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    return Markup(md.render(markdown))


def _target_label(target: Any) -> str:
    """A remediation target as a person reads it: ``i-0abc (web-1)``, not its stored record."""
    if isinstance(target, dict):
        name = (target.get("detail") or {}).get("name") or (target.get("tags") or {}).get("Name")
        ident = str(target.get("id") or "?")
        return f"{ident} ({name})" if name else ident
    return str(target)


def _targets(targets: Any) -> str:
    return ", ".join(_target_label(t) for t in (targets or []))


@lru_cache(maxsize=1)
def environment() -> Environment:
    # the reports' environment (aiops.core.reporting.templates: autoescape), over the console's own
    # folder (pages extend "base.html") and lenient about missing values (a page shows what it has)
    env: Environment = templates().overlay(loader=FileSystemLoader(str(TEMPLATES)), undefined=Undefined)
    env.filters = dict(env.filters)
    env.globals = dict(env.globals)
    env.filters.update(dt=_dt, pct=_pct, usd=_usd, signed=_signed, duration=_duration,
                       targets=_targets, urlencode=lambda v: quote(str(v), safe=""))
    env.globals.update(chart=_chart, evidence_chart=_evidence_chart, incident_spans=_incident_spans,
                       change_ticks=_change_ticks, budget_class=_budget_class, pct_points=_pct_points,
                       burn_lines=_burn_lines, nav=NAV)
    return env


def render(template: str, *, page: str, user: dict[str, Any], started: float, as_of: datetime | None,
           base: str, **ctx: Any) -> str:
    if "d" in ctx and isinstance(ctx["d"], dict) and ctx["d"].get("postmortem_md"):
        ctx["d"]["postmortem_html"] = _postmortem_html(ctx["d"]["postmortem_md"])
    title = next((label for href, label in NAV if href == page), page)
    html = environment().get_template(template).render(
        page=page, title=ctx.pop("title", title), user_name=user.get("name", "?"), can_act=user.get("can_act", False),
        as_of=as_of, base=base, elapsed_ms=(time.perf_counter() - started) * 1000, **ctx)
    return html
