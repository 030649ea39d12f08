"""
### traces_collect — AWS X-Ray per service and edge into the traces store

Every 15 minutes: `GetServiceGraph` per 5-minute window (per service and per caller -> callee edge:
requests, error / throttle / fault counts, latency p50/p95/p99 from X-Ray's response-time histogram)
and `GetTraceSummaries` (the slowest and the faulty trace ids per service and hour), replacing that
window in `s3://<artifact bucket>/traces/{stats,slow}/dt=.../`. The console's service page shows them; fault rate and p99 latency per service become
derived series (`metrics/derived-traces/`) that anomaly_detection scores like CloudWatch metrics.

**First run / gaps** catch up from the `traces_collect` watermark like metrics_extract (one mapped
task per day). **Backfill**: trigger with conf `{"backfill_days": 7}` or `{"start": ..., "end": ...}`;
a re-run of a window rewrites it (idempotent).
Bad rows quarantine their series (`traces/quarantine/dt=.../`, with a report); stored good rows stay.
"""

from __future__ import annotations

from aiops.airflow.collection import collection_dag

traces_collect = collection_dag("traces_collect", pipeline="aiops.traces.pipeline", tags=["traces", "xray"], doc_md=__doc__)
