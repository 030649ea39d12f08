"""Series ids and the metric catalog (include/metrics/catalog.yaml)."""

from __future__ import annotations

import pytest

from aiops.core.errors import ConfigError
from aiops.metrics.model import load_catalog, parse_series_id, series_id


def test_series_id_sorts_dimensions_and_round_trips():
    sid = series_id("AWS/ApplicationELB", "RequestCount", {"TargetGroup": "tg/x", "LoadBalancer": "app/y"}, "Sum")
    assert sid == "AWS/ApplicationELB|RequestCount|LoadBalancer=app/y,TargetGroup=tg/x|Sum"
    assert parse_series_id(sid) == ("AWS/ApplicationELB", "RequestCount",
                                    {"LoadBalancer": "app/y", "TargetGroup": "tg/x"}, "Sum")


def test_shipped_catalog_loads_and_bounds_cpu():
    catalog = load_catalog()
    spec = catalog.spec_for("AWS/EC2", "CPUUtilization")
    assert (spec.min, spec.max, spec.stat) == (0, 100, "Average")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param("period_seconds: 300\nfamilies: []\n", "families", id="no_families"),
        pytest.param("families:\n  - namespace: AWS/EC2\n    arn: x\n    metrics: [{name: CPU}]\n",
                     "families.0.resource_dimension", id="missing_dimension"),
        pytest.param("families:\n  - {namespace: A, resource_dimension: I, arn: x, metrics: [{name: C, sttat: Sum}]}\n",
                     "families.0.metrics.0.sttat", id="typo_in_field"),
        pytest.param("families: [\n", "", id="not_yaml"),
    ],
)
def test_malformed_catalog_names_file_and_field(tmp_path, text, field):
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert str(path) in str(info.value)
    assert info.value.field == field
