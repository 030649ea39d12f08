"""Great Expectations checks on an extracted metrics frame, with per-series quarantine.

Every failure names the series and the expectation. Series that fail a *quarantine* expectation
(nulls, duplicate timestamps, values out of the catalog's range, timestamps outside the window)
are split off and stored aside; the good series still land. *Warnings* (stale or silent series)
are reported but the data lands.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiops.core.errors import ValidationFailure
from aiops.metrics.model import STORE_COLUMNS, MetricCatalog

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
WARNING = "warning"


@dataclass(frozen=True)
class QualityIssue:
    series_id: str
    expectation: str
    detail: str
    severity: str

    def __str__(self) -> str:
        return f"[{self.severity}] {self.series_id}: {self.expectation} ({self.detail})"


@dataclass
class QualityReport:
    rows_checked: int = 0
    series_checked: int = 0
    issues: list[QualityIssue] = field(default_factory=list)

    @property
    def quarantined(self) -> set[str]:
        return {i.series_id for i in self.issues if i.severity == QUARANTINE}

    @property
    def warnings(self) -> list[QualityIssue]:
        return [i for i in self.issues if i.severity == WARNING]

    def to_dict(self) -> dict[str, Any]:
        return {"rows_checked": self.rows_checked, "series_checked": self.series_checked,
                "quarantined": sorted(self.quarantined), "issues": [asdict(i) for i in self.issues]}

    def summary(self) -> str:
        return (f"{self.rows_checked:,} rows / {self.series_checked} series checked; "
                f"{len(self.quarantined)} quarantined, {len(self.warnings)} warnings")


def _suite_and_batch(frame: pd.DataFrame, name: str) -> tuple[Any, Any, Any]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    with contextlib.suppress(Exception):  # progress bars are cosmetic; the API moves between versions
        ctx.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    source = ctx.data_sources.add_pandas(f"{name}_source")
    batch_def = source.add_dataframe_asset(f"{name}_frame").add_batch_definition_whole_dataframe("all")
    suite = ctx.suites.add(gx.ExpectationSuite(name=name))
    return ctx, suite, batch_def.get_batch(batch_parameters={"dataframe": frame})


def _config_key(kind: str, kwargs: dict[str, Any]) -> tuple[str, str, str, str]:
    """Identify an expectation by what it checks: GX returns results in its own order."""
    columns = kwargs.get("column_list") or []
    return (kind, str(kwargs.get("column") or ""), ",".join(columns), str(kwargs.get("row_condition") or ""))


def _offending_series(result: Any) -> set[str]:
    info = result.exception_info or {}
    if info.get("raised_exception"):  # GX swallows errors into the result: do not read them as a pass
        raise ValidationFailure(f"{result.expectation_config.type} could not run: {info.get('exception_message')}")
    rows = result.result.get("unexpected_index_list") or []
    return {str(r["series_id"]) for r in rows if isinstance(r, dict) and "series_id" in r}


def validate_metrics(
    frame: pd.DataFrame,
    catalog: MetricCatalog,
    *,
    window_start: datetime,
    window_end: datetime,
    freshness: timedelta,
    expected_series: list[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, QualityReport]:
    """Returns (good rows, quarantined rows, report)."""
    import great_expectations.expectations as gxe
    import pandas as pd

    report = QualityReport(rows_checked=len(frame), series_checked=frame["series_id"].nunique())
    missing_cols = set(STORE_COLUMNS) - set(frame.columns)
    if missing_cols:
        raise ValidationFailure(f"metrics frame lacks column(s) {sorted(missing_cols)}")

    checks: list[tuple[Any, str, str]] = [
        (gxe.ExpectColumnValuesToNotBeNull(column="value"), "expect_column_values_to_not_be_null(value)",
         "null or NaN values"),
        (gxe.ExpectColumnValuesToNotBeNull(column="timestamp"),
         "expect_column_values_to_not_be_null(timestamp)", "null timestamps"),
        (gxe.ExpectCompoundColumnsToBeUnique(column_list=["series_id", "timestamp"]),
         "expect_compound_columns_to_be_unique(series_id, timestamp)", "duplicate timestamps"),
        (gxe.ExpectColumnValuesToBeBetween(column="timestamp", min_value=pd.Timestamp(window_start),
                                           max_value=pd.Timestamp(window_end), strict_max=True),
         "expect_column_values_to_be_between(timestamp)",
         f"timestamps outside [{window_start.isoformat()}, {window_end.isoformat()})"),
    ]
    present = set(zip(frame["namespace"], frame["metric"], strict=True)) if len(frame) else set()
    for family in catalog.families:
        for spec in family.metrics:
            if (spec.min is None and spec.max is None) or (family.namespace, spec.name) not in present:
                continue
            cond = f'namespace=="{family.namespace}" and metric=="{spec.name}"'
            checks.append((gxe.ExpectColumnValuesToBeBetween(
                column="value", min_value=spec.min, max_value=spec.max, row_condition=cond,
                condition_parser="pandas"),
                f"expect_column_values_to_be_between(value) for {family.namespace}/{spec.name}",
                f"values outside [{spec.min}, {spec.max}]"))

    if len(frame):
        _, suite, batch = _suite_and_batch(frame, "metrics_rows")
        for expectation, _, _ in checks:
            suite.add_expectation(expectation)
        results = batch.validate(suite, result_format={
            "result_format": "COMPLETE", "unexpected_index_column_names": ["series_id"]})
        labels = {_config_key(exp.configuration.type, exp.configuration.kwargs): (label, detail)
                  for exp, label, detail in checks}
        for result in results.results:
            if result.success:
                continue
            cfg = result.expectation_config
            label, detail = labels.get(_config_key(cfg.type, cfg.kwargs), (cfg.type, "failed"))
            for sid in sorted(_offending_series(result)):
                report.issues.append(QualityIssue(sid, label, detail, QUARANTINE))

    # Freshness and silence, on a per-series summary (warnings: the data itself is fine).
    last = frame.groupby("series_id")["timestamp"].max() if len(frame) else pd.Series(dtype="datetime64[ns, UTC]")
    summary = last.rename("last_timestamp").reset_index()
    if len(summary):
        _, suite, batch = _suite_and_batch(summary, "metrics_freshness")
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
            column="last_timestamp", min_value=pd.Timestamp(window_end - freshness)))
        res = batch.validate(suite, result_format={
            "result_format": "COMPLETE", "unexpected_index_column_names": ["series_id"]}).results[0]
        if not res.success:
            for sid in sorted(_offending_series(res)):
                report.issues.append(QualityIssue(
                    sid, "expect_column_values_to_be_between(last_timestamp)",
                    f"stale: newest point older than {freshness} before window end", WARNING))
    # a window without any datapoint (a quiet day of a sparse account) has an empty summary
    present = set(summary["series_id"]) if len(summary) else set()
    for sid in sorted(set(expected_series or []) - present):
        report.issues.append(QualityIssue(sid, "series_has_data", "no datapoints in window", WARNING))

    bad_ids = report.quarantined
    bad_mask = frame["series_id"].isin(bad_ids)
    for issue in report.issues:
        (log.warning if issue.severity == QUARANTINE else log.info)("%s", issue)
    return frame[~bad_mask].reset_index(drop=True), frame[bad_mask].reset_index(drop=True), report
