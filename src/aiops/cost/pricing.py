"""The price table shipped under ``include/pricing/`` (source and review date inside) and the
savings arithmetic every recommendation uses. Monthly = hourly x ``hours_per_month`` (730)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from aiops.core.config import load_yaml_model
from aiops.core.settings import get_settings


class InstancePrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    hourly: float = Field(gt=0)
    vcpu: int = Field(gt=0)
    memory_gib: float = Field(gt=0)


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    source: str
    reviewed: str
    currency: str = "USD"
    hours_per_month: float = 730
    ec2: dict[str, InstancePrice]
    rds: dict[str, InstancePrice]
    ebs_gb_month: dict[str, float]
    snapshot_gb_month: float
    public_ipv4_hourly: float
    alb_hourly: float
    alb_lcu_hourly: float

    # -- arithmetic ---------------------------------------------------------------------------
    def monthly(self, hourly: float) -> float:
        return round(hourly * self.hours_per_month, 2)

    def ec2_monthly(self, instance_type: str) -> float:
        return self.monthly(self.ec2_price(instance_type).hourly)

    def ec2_price(self, instance_type: str) -> InstancePrice:
        try:
            return self.ec2[instance_type]
        except KeyError:
            raise KeyError(f"instance type {instance_type!r} is not in the price table") from None

    def rds_monthly(self, instance_class: str) -> float:
        try:
            return self.monthly(self.rds[instance_class].hourly)
        except KeyError:
            raise KeyError(f"DB instance class {instance_class!r} is not in the price table") from None

    def volume_monthly(self, volume_type: str, size_gib: float) -> float:
        try:
            return round(self.ebs_gb_month[volume_type] * size_gib, 2)
        except KeyError:
            raise KeyError(f"volume type {volume_type!r} is not in the price table") from None

    def snapshot_monthly(self, size_gib: float) -> float:
        return round(self.snapshot_gb_month * size_gib, 2)

    def eip_monthly(self) -> float:
        return self.monthly(self.public_ipv4_hourly)

    def alb_monthly(self, lcu: float = 0.0) -> float:
        return self.monthly(self.alb_hourly + lcu * self.alb_lcu_hourly)

    @property
    def citation(self) -> str:
        return f"{self.source}, reviewed {self.reviewed}"


def family_of(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def is_burstable(instance_type: str) -> bool:
    return family_of(instance_type).startswith("t")


def is_graviton(instance_type: str) -> bool:
    fam = family_of(instance_type)
    return fam[-1] == "g" or fam.endswith("gd") or fam.endswith("gn")


def load_prices(path: Path | None = None) -> PriceTable:
    path = path or get_settings().include_dir / "pricing" / "aws_us_east_1.yaml"

    return load_yaml_model(path, PriceTable)


@lru_cache(maxsize=1)
def default_prices() -> PriceTable:
    return load_prices()
