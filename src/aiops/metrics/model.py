"""The metrics contract every analysis shares: series ids, the metric catalog, the store schema.

A series is (namespace, metric, dimensions, stat); its id is
``namespace|metric|Name=Value,...|stat`` with dimensions sorted by name. The store holds one row
per (series_id, timestamp) with the columns in :data:`STORE_COLUMNS`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from aiops.core.config import load_yaml_model
from aiops.core.settings import get_settings

STORE_COLUMNS = {
    "series_id": "string",
    "timestamp": "datetime64[ns, UTC]",
    "value": "float64",
    "namespace": "string",
    "metric": "string",
    "stat": "string",
    "dimensions": "string",
    "resource_id": "string",
    "service": "string",
    "env": "string",
    "team": "string",
}


def series_id(namespace: str, metric: str, dimensions: dict[str, str], stat: str) -> str:
    dims = ",".join(f"{k}={v}" for k, v in sorted(dimensions.items()))
    return f"{namespace}|{metric}|{dims}|{stat}"


def parse_series_id(sid: str) -> tuple[str, str, dict[str, str], str]:
    namespace, metric, dims, stat = sid.split("|")
    dimensions = dict(part.split("=", 1) for part in dims.split(",") if part)
    return namespace, metric, dimensions, stat


class MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    stat: str = "Average"
    unit: str | None = None
    min: float | None = None
    max: float | None = None


class MetricFamily(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    namespace: str
    resource_dimension: str
    arn: str
    fallback_dimension: str | None = None
    fallback_arn: str | None = None
    metrics: list[MetricSpec] = Field(min_length=1)

    def metric(self, name: str) -> MetricSpec | None:
        return next((m for m in self.metrics if m.name == name), None)


class MetricCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    period_seconds: int = Field(300, ge=60)
    families: list[MetricFamily] = Field(min_length=1)

    def family(self, namespace: str) -> MetricFamily | None:
        return next((f for f in self.families if f.namespace == namespace), None)

    def spec_for(self, namespace: str, metric: str) -> MetricSpec | None:
        fam = self.family(namespace)
        return fam.metric(metric) if fam else None


def load_catalog(path: Path | None = None) -> MetricCatalog:
    """Load and validate ``include/metrics/catalog.yaml``; errors name the file and the field."""
    path = path or get_settings().include_dir / "metrics" / "catalog.yaml"

    return load_yaml_model(path, MetricCatalog)


@lru_cache(maxsize=4)
def default_catalog() -> MetricCatalog:
    return load_catalog()
