"""
### security_events — suspicious activity in CloudTrail, raised as alerts with the evidence

**Event-driven**: the trail bucket sends an S3 `ObjectCreated` notification to the SQS queue
`aiops-cloudtrail-files` for every new log file; an `AssetWatcher` on that queue starts a run a
few seconds later with the new keys. Nothing polls on a schedule.

* **plan_files** — the log files of this run: from the notifications, or for a manual run from
  conf `keys` (`["AWSLogs/.../x.json.gz", ...]`) or a time range `start` / `end` (ISO 8601, UTC).
* **analyse** — reads every file; a malformed or truncated file is **quarantined** (state store
  table `aiops_security_quarantine`, the raw bytes and the reason under
  `security/quarantine/dt=<day>/` in the artifact store, an audit entry) and the rest are processed.
  Detections: root account use, console login without MFA, IAM policy changes, access keys created,
  security group ingress opened to the world, CloudTrail stopped / changed, bursts of
  AccessDenied / unauthorised calls, activity from regions the account does not use. Each carries
  its evidence (event ids, log keys, source IPs, request fields); all are stored under
  `security/detections/dt=<day>/`.
* **raise_alerts** — one EventBridge event per detection (Source `matcarv.aiops`, DetailType
  `AIOps Security Event`), which the rule `aiops-ops-events` routes to `alert_intake`.
* **ack_notifications** — deletes the run's SQS notifications, only now that the files were analysed
  and the alerts raised (the watcher deletes nothing on reception). A failed run deletes nothing: the
  notifications come back and after the queue's `maxReceiveCount` SQS moves them to the dead-letter
  queue `aiops-cloudtrail-files-dlq`.

Settings: `AIOPS_SECURITY_HOME_REGIONS` (default: `regions`), `AIOPS_SECURITY_ACCESS_DENIED_THRESHOLD`
/ `_WINDOW_MINUTES`, `AIOPS_SECURITY_QUEUE_URL`, `AIOPS_SECURITY_TRAIL_NAME`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from aiops.airflow import default_args
from aiops.airflow.assets import cloudtrail_files_asset

CLOUDTRAIL_FILES = cloudtrail_files_asset()


@dag(
    dag_id="security_events",
    schedule=[CLOUDTRAIL_FILES],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=2,
    default_args=default_args(owner="security", retries=2),
    tags=["aiops", "security", "cloudtrail"],
    doc_md=__doc__,
    params={
        "keys": Param([], type="array", description="Manual run: CloudTrail log keys to analyse (trail bucket)."),
        "start": Param(None, type=["null", "string"], description="Manual run: analyse records from (ISO 8601 UTC)."),
        "end": Param(None, type=["null", "string"], description="Manual run: analyse records until (exclusive)."),
    },
)
def security_events():
    @task
    def plan_files(params=None, triggering_asset_events=None) -> dict:
        from datetime import UTC
        from datetime import datetime as dt

        from aiops.airflow import account_ready
        from aiops.core.queue import receipts
        from aiops.core.settings import get_settings
        from aiops.security.collect import find_trail
        from aiops.security.pipeline import (
            keys_for_range,
            keys_from_notifications,
            messages_from_asset_events,
        )

        account_ready("security_events", cached=True)  # trail, its queue and notifications (cached: per file batch)
        params = params or {}
        messages = messages_from_asset_events(triggering_asset_events)
        files = keys_from_notifications([m["Body"] for m in messages])
        if params.get("keys"):
            bucket = find_trail(get_settings().security_trail_name or None).bucket
            files += [{"bucket": bucket, "key": k} for k in params["keys"]]
        window: dict = {}
        if params.get("start") or params.get("end"):
            if not (params.get("start") and params.get("end")):
                raise ValueError("give both start and end for a time-range run")

            def parse(v: str) -> dt:
                t = dt.fromisoformat(v.replace("Z", "+00:00"))
                return t if t.tzinfo else t.replace(tzinfo=UTC)

            start, end = parse(params["start"]), parse(params["end"])
            files += keys_for_range(start, end)
            window = {"start": start.isoformat(), "end": end.isoformat()}
        unique = sorted({(f["bucket"], f["key"]): f for f in files}.values(), key=lambda f: f["key"])
        print(f"{len(unique)} CloudTrail log file(s) to analyse")
        return {"files": unique, "receipts": receipts(messages), **window}

    @task
    def analyse(plan: dict, run_id=None) -> list[dict]:
        from datetime import datetime as dt

        from aiops.security.pipeline import analyse_files

        start = dt.fromisoformat(plan["start"]) if plan.get("start") else None
        end = dt.fromisoformat(plan["end"]) if plan.get("end") else None
        out = analyse_files(plan["files"], run_id=run_id, start=start, end=end)
        for d in out["detections"]:
            print(f"[{d['severity']}] {d['detection']}: {d['title']} ({len(d['event_ids'])} event(s))")
        return out["detections"]

    @task
    def raise_alerts(detections: list[dict]) -> dict:
        from airflow.exceptions import AirflowSkipException

        from aiops.security.pipeline import raise_alerts as put

        if not detections:
            raise AirflowSkipException("nothing suspicious in these files")
        return put(detections)

    @task(trigger_rule="none_failed")
    def ack_notifications(plan: dict) -> dict:
        from aiops.security.pipeline import ack_notifications as ack

        return ack(plan.get("receipts") or [])

    plan = plan_files()
    raise_alerts(analyse(plan)) >> ack_notifications(plan)


security_events()
