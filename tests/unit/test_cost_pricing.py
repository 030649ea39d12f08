"""The shipped price table and the savings arithmetic."""

from __future__ import annotations

import pytest

from aiops.core.errors import ConfigError
from aiops.cost.pricing import default_prices, family_of, is_burstable, is_graviton, load_prices


def test_price_table_names_its_source_and_review_date():
    prices = default_prices()
    assert prices.source.startswith("AWS Price List")
    assert prices.reviewed == "2026-11-27"
    assert prices.citation == "AWS Price List, on-demand, us-east-1, reviewed 2026-11-27"


def test_price_table_covers_every_type_the_simulated_account_runs():
    from aiops_sandbox.topology import default_topology

    topo = default_topology()
    prices = default_prices()
    assert {i.instance_type for i in topo.instances} <= set(prices.ec2)
    assert {d.instance_class for d in topo.databases} <= set(prices.rds)


@pytest.mark.parametrize(("method", "args", "expected"), [
    pytest.param("ec2_monthly", ("m5.4xlarge",), 560.64, id="m5.4xlarge_0.768_x_730"),
    pytest.param("ec2_monthly", ("r5.xlarge",), 183.96, id="r5.xlarge_0.252_x_730"),
    pytest.param("rds_monthly", ("db.t3.medium",), 52.56, id="db.t3.medium_0.072_x_730"),
    pytest.param("volume_monthly", ("gp2", 500), 50.0, id="gp2_500GiB"),
    pytest.param("volume_monthly", ("gp3", 500), 40.0, id="gp3_500GiB"),
    pytest.param("snapshot_monthly", (750,), 37.5, id="snapshot_750GiB"),
    pytest.param("eip_monthly", (), 3.65, id="public_ipv4_0.005_x_730"),
    pytest.param("alb_monthly", (), 16.43, id="alb_0.0225_x_730"),
])
def test_monthly_prices(method, args, expected):
    assert getattr(default_prices(), method)(*args) == expected


def test_unknown_type_is_a_clear_error():
    with pytest.raises(KeyError, match=r"x9\.huge"):
        default_prices().ec2_monthly("x9.huge")


@pytest.mark.parametrize(("itype", "family", "burstable", "graviton"), [
    ("m5.large", "m5", False, False), ("t3.micro", "t3", True, False), ("m7g.large", "m7g", False, True),
])
def test_type_classification(itype, family, burstable, graviton):
    assert (family_of(itype), is_burstable(itype), is_graviton(itype)) == (family, burstable, graviton)


def test_malformed_price_table_names_file_and_field(tmp_path):
    bad = tmp_path / "prices.yaml"
    bad.write_text("source: x\nreviewed: y\nec2: {m5.large: {hourly: -1, vcpu: 2, memory_gib: 8}}\nrds: {}\n"
                   "ebs_gb_month: {}\nsnapshot_gb_month: 0.05\npublic_ipv4_hourly: 0.005\nalb_hourly: 0.02\n"
                   "alb_lcu_hourly: 0.008\n")
    with pytest.raises(ConfigError) as info:
        load_prices(bad)
    assert info.value.field == "ec2.m5.large.hourly"
    assert str(bad) in str(info.value)
