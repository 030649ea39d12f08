"""CloudTrail detectors: pure functions of records (each with the log file it came from).

Each detector registers itself with :func:`detector`; it receives every :class:`TrailEvent` of the
batch (sorted by time) and the :class:`DetectionContext`, and returns :class:`Detection` objects that
carry their evidence (event ids, log keys, the salient request fields).

Detections (ids match the sandbox ground truth): ``root_account_usage``,
``console_login_without_mfa``, ``iam_policy_change``, ``access_key_created``,
``security_group_opened_to_world``, ``cloudtrail_tampering``, ``access_denied_burst``,
``unusual_region_activity``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


@dataclass(frozen=True)
class TrailEvent:
    record: dict[str, Any]
    log_key: str

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(str(self.record["eventTime"]).replace("Z", "+00:00"))

    @property
    def name(self) -> str:
        return str(self.record.get("eventName", ""))

    @property
    def source(self) -> str:
        return str(self.record.get("eventSource", ""))

    @property
    def ok(self) -> bool:
        return not self.record.get("errorCode")

    @property
    def actor(self) -> str:
        ident = self.record.get("userIdentity") or {}
        return str(ident.get("arn") or ident.get("principalId") or ident.get("invokedBy") or ident.get("type", "?"))

    @property
    def params(self) -> dict[str, Any]:
        return self.record.get("requestParameters") or {}


@dataclass(frozen=True)
class DetectionContext:
    home_regions: frozenset[str]
    access_denied_threshold: int = 10
    access_denied_window: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class Detection:
    detection: str
    severity: str
    title: str
    resource: str
    actor: str
    region: str
    event_time: str
    event_ids: list[str]
    log_keys: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Stable per (detection, events): the same evidence seen again is the same alert."""
        import hashlib

        return hashlib.sha256("\x1f".join([self.detection, *sorted(self.event_ids)]).encode()).hexdigest()[:32]

    def detail(self) -> dict[str, Any]:
        """The EventBridge ``Detail`` (the keys the alert intake normalises); the fingerprint rides
        in ``evidence``."""
        d = asdict(self)
        d["evidence"] = {**d["evidence"], "fingerprint": self.fingerprint}
        return d


Detector = Callable[[list[TrailEvent], DetectionContext], Iterable[Detection]]
DETECTORS: dict[str, Detector] = {}


def detector(name: str) -> Callable[[Detector], Detector]:
    def register(fn: Detector) -> Detector:
        if name in DETECTORS:
            raise ValueError(f"detector {name!r} registered twice")
        DETECTORS[name] = fn
        return fn
    return register


def _single(name: str, severity: str, title: str, e: TrailEvent, resource: str, **evidence: Any) -> Detection:
    r = e.record
    ev = {"event_name": e.name, "event_source": e.source, "source_ip": r.get("sourceIPAddress"),
          "user_agent": r.get("userAgent"), **evidence}
    return Detection(detection=name, severity=severity, title=title, resource=resource, actor=e.actor,
                     region=str(r.get("awsRegion", "")), event_time=str(r["eventTime"]),
                     event_ids=[str(r.get("eventID", ""))], log_keys=[e.log_key], evidence=ev)


def _group(name: str, severity: str, title: str, events: list[TrailEvent], resource: str,
           **evidence: Any) -> Detection:
    first = events[0]
    ev = {"count": len(events), "event_names": sorted({e.name for e in events}),
          "window_start": str(events[0].record["eventTime"]), "window_end": str(events[-1].record["eventTime"]),
          "source_ips": sorted({str(e.record.get("sourceIPAddress")) for e in events}), **evidence}
    return Detection(detection=name, severity=severity, title=title, resource=resource, actor=first.actor,
                     region=str(first.record.get("awsRegion", "")), event_time=str(first.record["eventTime"]),
                     event_ids=[str(e.record.get("eventID", "")) for e in events],
                     log_keys=sorted({e.log_key for e in events}), evidence=ev)


@detector("root_account_usage")
def root_account_usage(events: list[TrailEvent], ctx: DetectionContext) -> Iterable[Detection]:
    for e in events:
        ident = e.record.get("userIdentity") or {}
        if ident.get("type") != "Root" or ident.get("invokedBy") or e.record.get("eventType") == "AwsServiceEvent":
            continue
        mfa = (e.record.get("additionalEventData") or {}).get("MFAUsed")
        yield _single("root_account_usage", "HIGH", f"Root user used: {e.name}", e,
                      resource=f"account/{ident.get('accountId', '')}", mfa_used=mfa, error_code=e.record.get("errorCode"))


@detector("console_login_without_mfa")
def console_login_without_mfa(events: list[TrailEvent], ctx: DetectionContext) -> Iterable[Detection]:
    for e in events:
        if e.name != "ConsoleLogin":
            continue
        if (e.record.get("responseElements") or {}).get("ConsoleLogin") != "Success":
            continue
        if (e.record.get("additionalEventData") or {}).get("MFAUsed") != "No":
            continue
        ident = e.record.get("userIdentity") or {}
        if ident.get("type") == "AssumedRole":  # federated sign-in: MFA is the IdP's job
            continue
        yield _single("console_login_without_mfa", "HIGH",
                      f"Console sign-in without MFA by {ident.get('userName') or e.actor}", e, resource=e.actor)


IAM_POLICY_EVENTS = frozenset({
    "AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy", "DetachUserPolicy", "DetachRolePolicy",
    "DetachGroupPolicy", "PutUserPolicy", "PutRolePolicy", "PutGroupPolicy", "DeleteUserPolicy",
    "DeleteRolePolicy", "DeleteGroupPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion",
    "DeletePolicyVersion", "SetDefaultPolicyVersion", "PutUserPermissionsBoundary", "PutRolePermissionsBoundary",
    "UpdateAssumeRolePolicy",
})


@detector("iam_policy_change")
def iam_policy_change(events: list[TrailEvent], ctx: DetectionContext) -> Iterable[Detection]:
    for e in events:
        if e.source != "iam.amazonaws.com" or e.name not in IAM_POLICY_EVENTS or not e.ok:
            continue
        p = e.params
        target = p.get("userName") or p.get("roleName") or p.get("groupName") or p.get("policyArn") or p.get("policyName")
        doc = str(p.get("policyDocument") or "")
        admin = p.get("policyArn", "").endswith(":policy/AdministratorAccess") or (
            '"*"' in doc and "Allow" in doc)
        yield _single("iam_policy_change", "HIGH" if admin else "MEDIUM",
                      f"IAM policy change: {e.name} on {target}", e, resource=str(target or ""),
                      policy_arn=p.get("policyArn"), policy_name=p.get("policyName"), grants_admin=admin)


@detector("access_key_created")
def access_key_created(events: list[TrailEvent], ctx: DetectionContext) -> Iterable[Detection]:
    for e in events:
        if e.name != "CreateAccessKey" or e.source != "iam.amazonaws.com" or not e.ok:
            continue
        key = ((e.record.get("responseElements") or {}).get("accessKey") or {})
        user = e.params.get("userName") or key.get("userName") or e.actor
        yield _single("access_key_created", "MEDIUM", f"Access key created for {user}", e, resource=str(user),
                      access_key_id=key.get("accessKeyId"))


def _world_rules(params: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in ((params.get("ipPermissions") or {}).get("items") or []):
        v4 = [r.get("cidrIp") for r in (item.get("ipRanges") or {}).get("items", []) if r.get("cidrIp") == "0.0.0.0/0"]
        v6 = [r.get("cidrIpv6") for r in (item.get("ipv6Ranges") or {}).get("items", [])
              if r.get("cidrIpv6") == "::/0"]
        for cidr in v4 + v6:
            out.append({"protocol": item.get("ipProtocol"), "from_port": item.get("fromPort"),
                        "to_port": item.get("toPort"), "cidr": cidr})
    if params.get("cidrIp") == "0.0.0.0/0":  # the older flat request form
        out.append({"protocol": params.get("ipProtocol"), "from_port": params.get("fromPort"),
                    "to_port": params.get("toPort"), "cidr": "0.0.0.0/0"})
    return out


@detector("security_group_opened_to_world")
def security_group_opened_to_world(events: list[TrailEvent], ctx: DetectionContext) -> Iterable[Detection]:
    for e in events:
        if e.name != "AuthorizeSecurityGroupIngress" or not e.ok:
            continue
        rules = _world_rules(e.params)
        if not rules:
            continue
        group = e.params.get("groupId") or e.params.get("groupName") or ""
        ports = ", ".join(f"{r['protocol']}/{r['from_port']}" for r in rules)
        yield _single("security_group_opened_to_world", "HIGH", f"Security group {group} opened to the world ({ports})",
                      e, resource=str(group), rules=rules)


TRAIL_EVENTS = {"StopLogging": "CRITICAL", "DeleteTrail": "CRITICAL", "UpdateTrail": "HIGH",
                "PutEventSelectors": "HIGH", "PutInsightSelectors": "MEDIUM", "DeleteEventDataStore": "HIGH"}


@detector("cloudtrail_tampering")
def cloudtrail_tampering(events: list[TrailEvent], ctx: DetectionContext) -> Iterable[Detection]:
    for e in events:
        if e.source != "cloudtrail.amazonaws.com" or e.name not in TRAIL_EVENTS or not e.ok:
            continue
        trail = e.params.get("name") or e.params.get("trailName") or ""
        yield _single("cloudtrail_tampering", TRAIL_EVENTS[e.name], f"CloudTrail {e.name} on {trail}", e,
                      resource=str(trail), request=e.params)


DENIED = frozenset({"AccessDenied", "AccessDeniedException", "Client.UnauthorizedOperation",
                    "UnauthorizedOperation", "UnauthorizedAccess", "Client.AccessDenied"})


@detector("access_denied_burst")
def access_denied_burst(events: list[TrailEvent], ctx: DetectionContext) -> Iterable[Detection]:
    by_actor: dict[str, list[TrailEvent]] = defaultdict(list)
    for e in events:
        if str(e.record.get("errorCode", "")) in DENIED:
            by_actor[e.actor].append(e)
    for actor, denied in sorted(by_actor.items()):
        denied.sort(key=lambda x: x.time)
        i = 0
        while i < len(denied):
            # grow a burst while consecutive denials stay within the window of its first one
            j = i
            while j + 1 < len(denied) and denied[j + 1].time - denied[i].time <= ctx.access_denied_window:
                j += 1
            group = denied[i:j + 1]
            if len(group) >= ctx.access_denied_threshold:
                span = (group[-1].time - group[0].time).total_seconds() / 60
                yield _group("access_denied_burst", "HIGH",
                             f"{len(group)} denied calls in {span:.0f} min by {actor}", group,
                             resource=actor, error_codes=sorted({str(x.record.get('errorCode')) for x in group}),
                             access_key_id=(group[0].record.get("userIdentity") or {}).get("accessKeyId"))
                i = j + 1
            else:
                i += 1


# Global services log with awsRegion us-east-1 (or their home) wherever they are called from.
GLOBAL_SOURCES = frozenset({
    "iam.amazonaws.com", "signin.amazonaws.com", "sts.amazonaws.com", "cloudfront.amazonaws.com",
    "route53.amazonaws.com", "organizations.amazonaws.com", "support.amazonaws.com", "ce.amazonaws.com",
    "health.amazonaws.com", "globalaccelerator.amazonaws.com", "shield.amazonaws.com",
    "waf.amazonaws.com", "account.amazonaws.com", "billingconsole.amazonaws.com",
})


@detector("unusual_region_activity")
def unusual_region_activity(events: list[TrailEvent], ctx: DetectionContext) -> Iterable[Detection]:
    groups: dict[tuple[str, str], list[TrailEvent]] = defaultdict(list)
    for e in events:
        region = str(e.record.get("awsRegion", ""))
        ident = e.record.get("userIdentity") or {}
        if (not region or region in ctx.home_regions or e.source in GLOBAL_SOURCES
                or ident.get("type") == "AWSService" or e.record.get("eventType") == "AwsServiceEvent"):
            continue
        groups[(region, e.actor)].append(e)
    for (region, actor), evs in sorted(groups.items()):
        evs.sort(key=lambda x: x.time)
        writes = [x.name for x in evs if x.record.get("readOnly") is False]
        yield _group("unusual_region_activity", "HIGH" if writes else "MEDIUM",
                     f"Activity in unused region {region} by {actor}", evs, resource=f"region/{region}",
                     home_regions=sorted(ctx.home_regions), write_calls=sorted(set(writes)))


def detect(events: list[TrailEvent], ctx: DetectionContext, only: Iterable[str] | None = None) -> list[Detection]:
    """Every registered detector over ``events``; sorted by time then detection."""
    events = sorted(events, key=lambda e: (e.time, str(e.record.get("eventID", ""))))
    wanted = set(only) if only else None
    out: list[Detection] = []
    for name, fn in DETECTORS.items():
        if wanted is None or name in wanted:
            out.extend(fn(events, ctx))
    return sorted(out, key=lambda d: (d.event_time, d.detection, d.event_ids[0] if d.event_ids else ""))
