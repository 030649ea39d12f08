"""Cost intelligence (issue 6): the daily cost report and right-sizing with FinOps approval.

- :mod:`aiops.cost.pricing` — the shipped on-demand price table (``include/pricing/``) and savings arithmetic.
- :mod:`aiops.cost.collect` — collectors: EC2/EBS/EIP/RDS/ELB facts through describe calls.
- :mod:`aiops.cost.utilisation` — per-resource evidence from the metrics store.
- :mod:`aiops.cost.rules` — the right-sizing and waste rules (a registry of pure functions).
- :mod:`aiops.cost.external` — AWS Compute Optimizer / Cost Explorer right-sizing, merged in on real AWS.
- :mod:`aiops.cost.decisions` — apply/defer/dismiss decisions and realised savings (state store).
- :mod:`aiops.cost.review` — the FinOps review (HITL body, answer parsing).
- :mod:`aiops.cost.rightsizing` — what ``cost_rightsizing``'s tasks do.
- :mod:`aiops.cost.spend` / :mod:`aiops.cost.report` — Cost Explorer, forecast, anomalies, the report.
"""
