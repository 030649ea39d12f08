"""One module per compliance check: ``METADATA`` (CheckMeta) + ``evaluate(inventory)``.

Discovered by :mod:`aiops.compliance.registry`; the module name is the check id. Helpers shared
by several checks live in ``_common`` (underscore modules are not checks).
"""
