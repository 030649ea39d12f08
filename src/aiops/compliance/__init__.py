"""Compliance sweeps: collectors -> pure checks (registry) -> results, diff, ASFF, summary email.

- :mod:`aiops.compliance.model` — :class:`Resource`, :class:`Result`, :class:`CheckMeta`, :class:`Inventory`.
- :mod:`aiops.compliance.collect` — page through each service once per region into records.
- :mod:`aiops.compliance.checks` — one module per check (``METADATA`` + ``evaluate``), discovered
  by :mod:`aiops.compliance.registry`.
- :mod:`aiops.compliance.exceptions` — accepted-risk tag / YAML exceptions (reported suppressed).
- :mod:`aiops.compliance.history` — results with history in the state store; sweep diff.
- :mod:`aiops.compliance.asff` — Security Hub findings (import, archive resolved).
- :mod:`aiops.compliance.external` — AWS Config rule compliance and other products' findings.
- :mod:`aiops.compliance.summary` — the emailed summary (HTML + text).
"""
