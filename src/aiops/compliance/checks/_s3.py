"""Pure S3 helpers: is a bucket public through its policy or ACL; does its policy require TLS."""

from __future__ import annotations

from typing import Any

from aiops.compliance.checks._common import as_list

PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
PUBLIC_GRANTEES = {"http://acs.amazonaws.com/groups/global/AllUsers",
                   "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"}


def _principal_is_public(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return "*" in as_list(principal.get("AWS"))
    return False


def public_reasons(bucket: dict[str, Any]) -> list[str]:
    """Why the bucket is public (empty: it is not). Block Public Access neutralises what it covers."""
    pab = bucket.get("public_access_block") or {}
    why: list[str] = []
    if not pab.get("RestrictPublicBuckets") and not pab.get("BlockPublicPolicy"):
        for st in as_list((bucket.get("policy") or {}).get("Statement")):
            # A condition (source VPC, org id, ...) narrows the grant: not counted as public.
            if (isinstance(st, dict) and st.get("Effect") == "Allow" and _principal_is_public(st.get("Principal"))
                    and not st.get("Condition")):
                why.append(f"policy statement {st.get('Sid') or '(no Sid)'} allows "
                           f"{', '.join(map(str, as_list(st.get('Action'))))} to everyone")
    if not pab.get("IgnorePublicAcls"):
        for grant in bucket.get("acl_grants") or []:
            if grant.get("Grantee", {}).get("URI") in PUBLIC_GRANTEES:
                why.append(f"ACL grants {grant.get('Permission')} to {grant['Grantee']['URI'].rsplit('/', 1)[-1]}")
    return why


def denies_insecure_transport(policy: dict[str, Any]) -> bool:
    for st in as_list(policy.get("Statement")):
        if not isinstance(st, dict) or st.get("Effect") != "Deny" or not _principal_is_public(st.get("Principal")):
            continue
        cond = st.get("Condition") or {}
        value = (cond.get("Bool") or {}).get("aws:SecureTransport")
        if str(value).lower() == "false":
            return True
    return False
