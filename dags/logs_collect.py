"""
### logs_collect — CloudWatch Logs per service into the logs store

Every 15 minutes: for each service's log groups (`/matcarv/<service>/<env>/...`), read the interval
with `FilterLogEvents`, count errors and warnings per 5 minutes and group error lines into
signatures (ids and numbers normalised; a sample line kept), and replace that window in
`s3://<artifact bucket>/logs/{counts,signatures}/dt=.../`. The console's service page shows them; errors per 5 minutes per service become a derived
series (`metrics/derived-logs/`) that anomaly_detection scores like CloudWatch metrics.

**First run / gaps** catch up from the `logs_collect` watermark like metrics_extract (one mapped
task per day). **Backfill**: trigger with conf `{"backfill_days": 7}` or `{"start": ..., "end": ...}`;
a re-run of a window rewrites it (idempotent).
Bad rows quarantine their series (`logs/quarantine/dt=.../`, with a report); stored good rows stay.
"""

from __future__ import annotations

from aiops.airflow.collection import collection_dag

logs_collect = collection_dag("logs_collect", pipeline="aiops.logs.pipeline", tags=["logs", "cloudwatch"], doc_md=__doc__)
