"""The anomaly event: what a ``score`` task hands to ``publish`` (XCom) and ``publish`` sends to
EventBridge (the ``detail`` of ``AIOps Anomaly Detected``), which the alert intake reads back
(:func:`aiops.alerting.normalise.aiops_anomaly`). One model on both sides, unknown keys refused.

Timestamps serialise as ``datetime.isoformat()`` (``+00:00``), as they always have, so the
fingerprint, the EventBridge ``Time`` and stored events keep their shape. Optional fields are
dumped only when set (``exclude_unset``): an event without a detector's evidence, or not yet
stamped by ``publish``, has the same keys it had before the model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator


def _aware(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class AnomalyEvidence(BaseModel):
    """What raised the anomaly (:meth:`aiops.anomaly.detector.Detector.evidence`)."""

    model_config = ConfigDict(extra="forbid")

    component: str
    pipeline: list[str]
    residual: float
    band_half_width: float
    residual_vs_band: float | None
    direction: Literal["above", "below"]
    surprise: float
    p_value: float
    threshold: float


class AnomalyEvent(BaseModel):
    """One anomaly episode's onset on one series."""

    model_config = ConfigDict(extra="forbid")

    alert_type: Literal["anomaly"]
    fingerprint: str
    series_id: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    stat: str
    region: str
    resource_id: str | None
    service: str | None
    env: str | None
    team: str | None
    onset: datetime
    value: float
    forecast: float | None
    lower: float | None
    upper: float | None
    anomaly_score: float
    reason: str
    # the calibrated score and what raised it (when the detector is known), so alerting can route on confidence
    calibrated_score: float | None = None
    p_value: float | None = None
    evidence: AnomalyEvidence | None = None
    # stamped by publish: how old the data was when it was sent (history is never paged)
    observed_at: datetime | None = None
    data_age_seconds: float | None = None
    run_id: str | None = None

    @field_validator("onset", "observed_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _aware(value)

    @field_serializer("onset", "observed_at")
    def _iso(self, value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    def detail(self) -> dict[str, Any]:
        """The JSON hand-off (XCom value, EventBridge detail): the fields that were set."""
        return self.model_dump(mode="json", exclude_unset=True)
