"""Keep the simulated account alive: publish each new 5-minute point through PutMetricData.

While ``make run`` is up, CloudWatch keeps receiving datapoints the way a real account does, so
``metrics_extract`` always has a fresh interval to pull.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from aiops_sandbox.fleet_metrics import STEP, SeriesDef

log = logging.getLogger(__name__)


class LiveFeeder(threading.Thread):
    def __init__(self, cloudwatch: Any, series: list[SeriesDef], start: float, check_every: float = 20.0,
                 trace_services: list[str] | None = None) -> None:
        super().__init__(name="aiops-sandbox-live", daemon=True)
        self.cloudwatch = cloudwatch
        self.series = series
        self.published_until = start  # exclusive: points before this are in the emulator
        self.check_every = check_every
        self._stop = threading.Event()
        self.points = 0
        self.overlay: Any = None  # game day (aiops_sandbox.gameday): built on first use in run()
        self.trace_services = trace_services or []  # services whose live X-Ray traces we send

    def tick(self, now: float | None = None) -> int:
        """Publish every step that has completed since the last tick; returns points published."""
        from aiops_sandbox.seed import put_live_points

        now = time.time() if now is None else now
        until = now // STEP * STEP
        if until <= self.published_until:
            return 0
        skip = self.overlay.overlaid() if self.overlay is not None else set()
        series = [s for s in self.series if s.series_id not in skip] if skip else self.series
        n = put_live_points(self.cloudwatch, series, self.published_until, until)
        if self.trace_services:
            self._traces(self.published_until, until)
        self.published_until = until
        self.points += n
        return n

    def run(self) -> None:
        while not self._stop.wait(self.check_every):
            try:
                self._game_day()
            except Exception:  # a broken overlay must not stop the normal feed
                log.exception("sandbox game-day overlay failed; retrying")
            try:
                n = self.tick()
                if n:
                    log.info("sandbox: published %d live datapoints", n)
            except Exception:  # keep feeding; the emulator may be restarting
                log.exception("sandbox live feed failed; retrying")

    def _game_day(self) -> None:
        """Keep injected incidents (``aiops sandbox incident``) going until remediated."""
        if self.overlay is None:
            from aiops_sandbox.gameday import GameDayOverlay
            from aiops_sandbox.seed import boto_factory

            self.overlay = GameDayOverlay(boto_factory(self.cloudwatch.meta.endpoint_url))
        n = self.overlay.tick()
        if n:
            log.info("sandbox: game-day overlay published %d datapoints", n)

    def _traces(self, start: float, end: float) -> None:
        """Sampled live requests as X-Ray traces; an active game-day failure shapes its service's."""
        from aiops_sandbox import traces
        from aiops_sandbox.gameday import active
        from aiops_sandbox.seed import boto_factory

        clients = boto_factory(self.cloudwatch.meta.endpoint_url)
        try:
            injections = active(clients)
        except Exception:  # no game day state yet
            injections = []
        traces.put_live(clients("xray"), self.trace_services, traces.game_day_effects(injections, end), start, end)

    def stop(self) -> None:
        self._stop.set()
