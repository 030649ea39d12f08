from __future__ import annotations

from aiops.account.permissions import permissions

PERMISSIONS = permissions("preflight", reader=("sts:GetCallerIdentity",))
