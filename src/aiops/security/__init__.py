"""Security events from CloudTrail: detections over the trail's log files, alerts with evidence.

- :mod:`aiops.security.detections` — registry of detectors, pure functions of CloudTrail records.
- :mod:`aiops.security.pipeline` — what the ``security_events`` DAG does: keys from S3 event
  notifications (or a time range), read + quarantine malformed files, detect, alert via EventBridge.
"""
