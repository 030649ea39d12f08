"""Deterministic CloudTrail log files for the simulated account (pure: no AWS calls, no I/O).

``build_cloudtrail_logs`` returns the gzip'd JSON files a multi-region trail would have delivered
to its S3 bucket over the ``hours`` before ``anchor``, in the real delivery layout::

    AWSLogs/{account}/CloudTrail/{region}/{YYYY}/{MM}/{DD}/
        {account}_CloudTrail_{region}_{YYYYMMDDTHHMMZ}_{16 alnum}.json.gz

with the real record format (``{"Records": [...]}``, eventVersion 1.09, userIdentity,
sessionContext, tlsDetails, ...). Files cover anchor-aligned hours: file ``k`` (k = hours..1)
holds the events of ``[anchor - k h, anchor - (k-1) h)`` and its key timestamp is the end of that
hour (the delivery time, floored to the minute). Like CloudTrail, a record goes to the file of its
``awsRegion``: the home region gets one file per hour; global-service events (IAM, sign-in,
ListBuckets, Cost Explorer) carry ``awsRegion`` us-east-1, and the injected foreign-region activity
gets its own file under that region's key path.

Background traffic (15-40 records per home-region hour, busier during 13:00-23:00 UTC working
hours) is benign: read calls by the application instance role and the automation role,
``AssumeRole`` by AWS services, credential-refresh and metric writes, an occasional
``RunInstances`` + ``CreateTags`` by automation, MFA console sign-ins and console/CLI reads by
the MFA-enabled SRE users, CLI reads by the other human users, container-registry calls by
programmatic users, a rare isolated ``AccessDenied`` and, now and then, an SRE mistyping their
password (a ``ConsoleLogin`` *Failure*, which real CloudTrail records with ``MFAUsed: No``; only
*successful* MFA-less sign-ins are a finding).

Injected findings (``InjectedSecurityEvent``) tell one story, at fixed offsets before ``anchor``:

* -30h  ``root_account_usage``: root console sign-in (with MFA) and a root API call.
* -28h  ``access_denied_burst``: a leaked key of the programmatic user enumerates the account
  (28 ``AccessDenied`` / ``Client.UnauthorizedOperation`` errors in 4 minutes).
* -26h  ``console_login_without_mfa``: the MFA-less human user signs in to the console from an
  unseen IP, then ``iam_policy_change`` (AdministratorAccess attached to, and an inline ``*:*``
  policy put on, the programmatic user) and ``access_key_created`` (a new key for that user).
* -20h  ``security_group_opened_to_world``: the new key opens port 22 of the bastion SG to
  0.0.0.0/0.
* -8h   ``unusual_region_activity``: the new key describes and launches instances in ap-east-1.
* -6h   ``cloudtrail_tampering``: the new key updates the trail, then stops its logging.

Injections older than the window (``hours`` < 31) are left out of files and of the returned list.
Discrete findings yield one ``InjectedSecurityEvent`` per flagged record; the two aggregate ones
(``access_denied_burst``, ``unusual_region_activity``) yield one summarising the group. Every
``detail`` has ``event_ids`` (the flagged records' eventIDs) and ``log_keys`` (their files).

Actor roles are chosen from ``users`` (override with ``resources`` keys ``console_no_mfa_user``
and ``compromised_user``): the MFA-less console user is the first IAM user without MFA whose name
does not look programmatic (``ci``, ``bot``, ``svc``, ``legacy``, ...); the compromised user is the
first programmatic-looking IAM user. ``AssumedRole`` actors in ``users`` join the application
roles. Same arguments give byte-identical files (seeded ``random.Random``, gzip mtime 0).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "CLOUDTRAIL_KEY_RE",
    "DETECTIONS",
    "InjectedSecurityEvent",
    "TrailActor",
    "build_cloudtrail_logs",
    "parse_cloudtrail_file",
    "truncated_file",
]

EVENT_VERSION = "1.09"
GLOBAL_REGION = "us-east-1"
UNUSUAL_REGION = "ap-east-1"
ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"

DETECTIONS = (
    "root_account_usage",
    "console_login_without_mfa",
    "iam_policy_change",
    "access_key_created",
    "security_group_opened_to_world",
    "cloudtrail_tampering",
    "access_denied_burst",
    "unusual_region_activity",
)

CLOUDTRAIL_KEY_RE = re.compile(
    r"^AWSLogs/(?P<account>\d{12})/CloudTrail/(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d)/"
    r"(?P<year>\d{4})/(?P<month>\d{2})/(?P<day>\d{2})/"
    r"(?P=account)_CloudTrail_(?P=region)_(?P<stamp>\d{8}T\d{4}Z)_(?P<suffix>[A-Za-z0-9]{16})\.json\.gz$"
)

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_PROGRAMMATIC_TOKENS = frozenset(
    {
        "ci",
        "cd",
        "bot",
        "svc",
        "service",
        "legacy",
        "automation",
        "deploy",
        "deployer",
        "jenkins",
        "terraform",
        "pipeline",
        "build",
        "runner",
        "sa",
    }
)

_TLS_VERSION = "TLSv1.3"
_TLS_CIPHER = "TLS_AES_128_GCM_SHA256"

UA_CLI = (
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0-1016-aws md/arch#x86_64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off "
    "md/command#{command}"
)
UA_BOTO = (
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 "
    "lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69"
)
UA_CI = "aws-cli/1.22.34 Python/3.8.10 Linux/5.4.0-1094-aws botocore/1.23.34"
UA_BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
UA_ATTACKER_BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
UA_ATTACKER_CLI = "aws-cli/1.18.69 Python/2.7.18 Linux/4.19.0-18-amd64 botocore/1.16.19"
UA_CONSOLE = "AWS Internal"

NAT_GATEWAY_IP = "198.51.100.10"
CI_RUNNER_IP = "192.0.2.50"
ATTACKER_IP = "198.51.100.187"
ROOT_IP = "203.0.113.5"


# --------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailActor:
    """A principal of the simulated account as CloudTrail sees it.

    ``kind`` is ``"Root"``, ``"IAMUser"`` or ``"AssumedRole"``; ``arn`` is the user/root ARN, or
    for a role either ``arn:aws:iam::{acct}:role/{name}`` or an STS assumed-role ARN (whose
    session name is then used). ``access_key_id`` is the user's long-term key (or None).
    """

    kind: str
    name: str
    arn: str
    access_key_id: str | None = None
    mfa: bool = False


@dataclass(frozen=True)
class InjectedSecurityEvent:
    """Ground truth for one injected finding: which record(s) a detector should flag and where."""

    id: str
    detection: str
    event_name: str
    event_time: str
    actor: str
    region: str
    detail: dict
    log_key: str


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _java_date(ts: datetime) -> str:
    """IAM's responseElements date style: ``Jan 13, 2023, 7:54:32 PM``."""
    hour12 = ts.hour % 12 or 12
    ampm = "AM" if ts.hour < 12 else "PM"
    return f"{ts.strftime('%b')} {ts.day}, {ts.year}, {hour12}:{ts.minute:02d}:{ts.second:02d} {ampm}"


def _stable_id(prefix: str, length: int, *parts: str) -> str:
    """A deterministic AWS-style identifier (AIDA..., AROA..., AKIA...) derived from ``parts``."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return prefix + "".join(_KEY_CHARS[b % len(_KEY_CHARS)] for b in digest[:length])


def _rand_key(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choice(_KEY_CHARS) for _ in range(16))


def _rand_hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _host(service: str, region: str) -> str:
    if service == "iam":
        return "iam.amazonaws.com"
    if service == "signin":
        return "signin.aws.amazon.com" if region == GLOBAL_REGION else f"{region}.signin.aws.amazon.com"
    return f"{service}.{region}.amazonaws.com"


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", name.lower()) if t}


def _is_programmatic(actor: TrailActor) -> bool:
    return actor.kind == "IAMUser" and bool(_tokens(actor.name) & _PROGRAMMATIC_TOKENS)


def _work_hours(ts: datetime) -> bool:
    return 13 <= ts.hour < 23


# --------------------------------------------------------------------------------------
# Principals
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Role:
    name: str
    session: str
    role_arn: str


def _role_from_actor(account_id: str, actor: TrailActor) -> _Role:
    m = re.match(r"^arn:aws:sts::\d{12}:assumed-role/([^/]+)/(.+)$", actor.arn)
    if m:
        return _Role(m.group(1), m.group(2), f"arn:aws:iam::{account_id}:role/{m.group(1)}")
    return _Role(actor.name, f"{actor.name}-session", actor.arn)


class _Identities:
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    def user_key(self, user: TrailActor, key: str) -> dict[str, Any]:
        return {
            "type": "IAMUser",
            "principalId": _stable_id("AIDA", 17, self.account_id, user.arn),
            "arn": user.arn,
            "accountId": self.account_id,
            "accessKeyId": key,
            "userName": user.name,
        }

    def user_console(self, user: TrailActor, key: str, created: datetime, mfa: bool) -> dict[str, Any]:
        ident = self.user_key(user, key)
        ident["sessionContext"] = {
            "sessionIssuer": {},
            "webIdFederationData": {},
            "attributes": {"creationDate": _iso(created), "mfaAuthenticated": "true" if mfa else "false"},
        }
        return ident

    def root_console(self, root: TrailActor, key: str, created: datetime, mfa: bool) -> dict[str, Any]:
        ident: dict[str, Any] = {
            "type": "Root",
            "principalId": self.account_id,
            "arn": root.arn,
            "accountId": self.account_id,
            "accessKeyId": key,
        }
        ident["sessionContext"] = {
            "sessionIssuer": {},
            "webIdFederationData": {},
            "attributes": {"creationDate": _iso(created), "mfaAuthenticated": "true" if mfa else "false"},
        }
        return ident

    def assumed_role(self, role: _Role, key: str, created: datetime) -> dict[str, Any]:
        role_id = _stable_id("AROA", 17, self.account_id, role.role_arn)
        return {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{role.session}",
            "arn": f"arn:aws:sts::{self.account_id}:assumed-role/{role.name}/{role.session}",
            "accountId": self.account_id,
            "accessKeyId": key,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": role.role_arn,
                    "accountId": self.account_id,
                    "userName": role.name,
                },
                "webIdFederationData": {},
                "attributes": {"creationDate": _iso(created), "mfaAuthenticated": "false"},
            },
        }


# --------------------------------------------------------------------------------------
# Record builder
# --------------------------------------------------------------------------------------


class _Recorder:
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    def api(
        self,
        rng: random.Random,
        *,
        identity: dict[str, Any],
        ts: datetime,
        service: str,
        name: str,
        region: str,
        ip: str,
        ua: str,
        params: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        read_only: bool = True,
        error: tuple[str, str] | None = None,
        resources: list[dict[str, str]] | None = None,
        additional: dict[str, Any] | None = None,
        from_console: bool = False,
        tls: bool = True,
    ) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "eventVersion": EVENT_VERSION,
            "userIdentity": identity,
            "eventTime": _iso(ts),
            "eventSource": f"{service}.amazonaws.com",
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": ua,
        }
        if error is not None:
            rec["errorCode"], rec["errorMessage"] = error
        rec["requestParameters"] = params
        rec["responseElements"] = None if error is not None else response
        if additional is not None:
            rec["additionalEventData"] = additional
        rec["requestID"] = _rand_hex(rng, 16).upper() if service == "s3" else _uuid(rng)
        rec["eventID"] = _uuid(rng)
        rec["readOnly"] = read_only
        if resources:
            rec["resources"] = resources
        rec["eventType"] = "AwsApiCall"
        rec["managementEvent"] = True
        rec["recipientAccountId"] = self.account_id
        rec["eventCategory"] = "Management"
        if tls:
            rec["tlsDetails"] = {
                "tlsVersion": _TLS_VERSION,
                "cipherSuite": _TLS_CIPHER,
                "clientProvidedHostHeader": _host(service, region),
            }
        if from_console:
            rec["sessionCredentialFromConsole"] = "true"
        return rec

    def console_login(
        self,
        rng: random.Random,
        *,
        identity: dict[str, Any],
        ts: datetime,
        ip: str,
        ua: str,
        success: bool,
        mfa_used: bool,
    ) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "eventVersion": EVENT_VERSION,
            "userIdentity": identity,
            "eventTime": _iso(ts),
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": GLOBAL_REGION,
            "sourceIPAddress": ip,
            "userAgent": ua,
        }
        if not success:
            rec["errorMessage"] = "Failed authentication"
        rec["requestParameters"] = None
        rec["responseElements"] = {"ConsoleLogin": "Success" if success else "Failure"}
        state = _rand_hex(rng, 24)
        rec["additionalEventData"] = {
            "LoginTo": (
                "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true"
                f"&nc2=h_ct&src=header-signin&state=hashArgsFromTB_{GLOBAL_REGION}_{state}"
            ),
            "MobileVersion": "No",
            "MFAUsed": "Yes" if mfa_used else "No",
        }
        rec["eventID"] = _uuid(rng)
        rec["readOnly"] = False
        rec["eventType"] = "AwsConsoleSignIn"
        rec["managementEvent"] = True
        rec["recipientAccountId"] = self.account_id
        rec["eventCategory"] = "Management"
        rec["tlsDetails"] = {
            "tlsVersion": _TLS_VERSION,
            "cipherSuite": _TLS_CIPHER,
            "clientProvidedHostHeader": _host("signin", GLOBAL_REGION),
        }
        return rec

    def service_assume_role(
        self, rng: random.Random, *, ts: datetime, region: str, service_principal: str, role: _Role
    ) -> dict[str, Any]:
        key = _rand_key(rng, "ASIA")
        expiration = ts + timedelta(hours=6)
        return {
            "eventVersion": EVENT_VERSION,
            "userIdentity": {"type": "AWSService", "invokedBy": service_principal},
            "eventTime": _iso(ts),
            "eventSource": "sts.amazonaws.com",
            "eventName": "AssumeRole",
            "awsRegion": region,
            "sourceIPAddress": service_principal,
            "userAgent": service_principal,
            "requestParameters": {"roleArn": role.role_arn, "roleSessionName": role.session},
            "responseElements": {
                "credentials": {
                    "accessKeyId": key,
                    "sessionToken": f"IQoJb3JpZ2luX2VjE{_rand_hex(rng, 40)}",
                    "expiration": _java_date(expiration),
                }
            },
            "requestID": _uuid(rng),
            "eventID": _uuid(rng),
            "readOnly": True,
            "resources": [{"accountId": self.account_id, "type": "AWS::IAM::Role", "ARN": role.role_arn}],
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self.account_id,
            "sharedEventID": _uuid(rng),
            "eventCategory": "Management",
        }


# --------------------------------------------------------------------------------------
# Account model
# --------------------------------------------------------------------------------------


@dataclass
class _Account:
    account_id: str
    region: str
    seed: int
    root: TrailActor
    sres: list[TrailActor]
    developers: list[TrailActor]
    programmatic: list[TrailActor]
    no_mfa_console: TrailActor
    compromised: TrailActor
    app_role: _Role
    automation_role: _Role
    lambda_role: _Role
    extra_roles: list[_Role]
    instance_ids: list[str]
    trail_name: str
    trail_bucket: str
    bastion_sg_id: str
    ids: _Identities
    rec: _Recorder

    def long_term_key(self, user: TrailActor) -> str:
        return user.access_key_id or _stable_id("AKIA", 16, self.account_id, user.arn, "key1")

    def ip_of(self, user: TrailActor) -> str:
        octet = 20 + int(hashlib.sha256(user.name.encode()).hexdigest(), 16) % 200
        return f"203.0.113.{octet}"


def _pick_user(users: list[TrailActor], wanted: str | None, what: str) -> TrailActor | None:
    if wanted is None:
        return None
    for u in users:
        if u.name == wanted:
            return u
    raise ValueError(f"resources[{what!r}] names {wanted!r}, which is not among the IAM users given")


def _build_account(
    account_id: str, region: str, seed: int, users: list[TrailActor], resources: dict[str, str]
) -> _Account:
    if not re.fullmatch(r"\d{12}", account_id):
        raise ValueError(f"account_id must be 12 digits, got {account_id!r}")
    for required in ("trail_name", "bastion_sg_id"):
        if not resources.get(required):
            raise ValueError(f"resources must give {required!r} (got keys {sorted(resources)})")
    for u in users:
        if u.kind not in ("Root", "IAMUser", "AssumedRole"):
            raise ValueError(f"TrailActor.kind must be Root, IAMUser or AssumedRole, got {u.kind!r}")
    iam_users = [u for u in users if u.kind == "IAMUser"]
    if not iam_users:
        raise ValueError("users must contain at least one IAMUser actor")
    root = next((u for u in users if u.kind == "Root"), None) or TrailActor(
        kind="Root", name="root", arn=f"arn:aws:iam::{account_id}:root", access_key_id=None, mfa=True
    )
    humans = [u for u in iam_users if not _is_programmatic(u)]
    programmatic = [u for u in iam_users if _is_programmatic(u)]

    no_mfa = _pick_user(iam_users, resources.get("console_no_mfa_user"), "console_no_mfa_user")
    if no_mfa is None:
        no_mfa = next((u for u in humans if not u.mfa), None) or next(
            (u for u in iam_users if not u.mfa), iam_users[0]
        )
    compromised = _pick_user(iam_users, resources.get("compromised_user"), "compromised_user")
    if compromised is None:
        compromised = next((u for u in programmatic if u != no_mfa), None) or next(
            (u for u in iam_users if u != no_mfa and not u.mfa), None
        )
    if compromised is None or compromised == no_mfa:
        # a one-user account: the attacker mints a key for a user of their own making
        compromised = TrailActor(
            kind="IAMUser", name="svc-backup", arn=f"arn:aws:iam::{account_id}:user/svc-backup", mfa=False
        )
        programmatic = [*programmatic, compromised]

    sres = [u for u in humans if u.mfa and u != no_mfa]
    developers = [u for u in humans if not u.mfa]
    if compromised not in programmatic:
        programmatic = [*programmatic, compromised]
        developers = [u for u in developers if u != compromised]

    instance_ids = [i.strip() for i in resources.get("instance_ids", "").split(",") if i.strip()]
    if not instance_ids:
        instance_ids = [
            "i-0" + hashlib.sha256(f"{account_id}:{n}".encode()).hexdigest()[:16] for n in range(3)
        ]
    extra_roles = [_role_from_actor(account_id, u) for u in users if u.kind == "AssumedRole"]

    def role(name: str, session: str) -> _Role:
        return _Role(name, session, f"arn:aws:iam::{account_id}:role/{name}")

    return _Account(
        account_id=account_id,
        region=region,
        seed=seed,
        root=root,
        sres=sres,
        developers=developers,
        programmatic=programmatic,
        no_mfa_console=no_mfa,
        compromised=compromised,
        app_role=role("app-instance-role", instance_ids[0]),
        automation_role=role("aiops-automation", "airflow-worker"),
        lambda_role=role("aiops-lambda-exec", "aiops-remediator"),
        extra_roles=extra_roles,
        instance_ids=instance_ids,
        trail_name=resources["trail_name"],
        trail_bucket=resources.get("trail_bucket", f"aws-cloudtrail-logs-{account_id}"),
        bastion_sg_id=resources["bastion_sg_id"],
        ids=_Identities(account_id),
        rec=_Recorder(account_id),
    )


# --------------------------------------------------------------------------------------
# Background traffic
# --------------------------------------------------------------------------------------

_SESSION_HOURS = 8


def _login_time(acct: _Account, user: TrailActor, day: datetime) -> datetime:
    """When ``user`` signs in to the console on ``day`` (midnight UTC): 13:00-14:59 UTC."""
    r = random.Random(f"cloudtrail-login:{acct.seed}:{user.name}:{day.date().isoformat()}")
    return day + timedelta(hours=13, minutes=r.randrange(120), seconds=r.randrange(60))


def _active_login(acct: _Account, user: TrailActor, ts: datetime) -> datetime | None:
    midnight = ts.replace(hour=0, minute=0, second=0, microsecond=0)
    for day in (midnight, midnight - timedelta(days=1)):
        start = _login_time(acct, user, day)
        if start <= ts < start + timedelta(hours=_SESSION_HOURS):
            return start
    return None


def _console_session_key(acct: _Account, user: TrailActor, login: datetime) -> str:
    return _stable_id("ASIA", 16, acct.account_id, user.arn, _iso(login))


def _instance_filter(acct: _Account, rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"instancesSet": {"items": [{"instanceId": rng.choice(acct.instance_ids)}]}, "filterSet": {}}
    return {
        "instancesSet": {},
        "filterSet": {
            "items": [{"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}]}}]
        },
    }


def _read_call(acct: _Account, rng: random.Random) -> tuple[str, str, dict[str, Any] | None]:
    """A (service, eventName, requestParameters) read call an operator typically makes."""
    choice = rng.randrange(9)
    if choice == 0:
        return "ec2", "DescribeInstances", _instance_filter(acct, rng)
    if choice == 1:
        return "ec2", "DescribeVolumes", {"volumeSet": {}, "filterSet": {}, "maxResults": 500}
    if choice == 2:
        return (
            "ec2",
            "DescribeSecurityGroups",
            {"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}},
        )
    if choice == 3:
        return "monitoring", "DescribeAlarms", {"maxRecords": 100}
    if choice == 4:
        return (
            "monitoring",
            "GetMetricData",
            {
                "metricDataQueries": [
                    {
                        "id": "cpu",
                        "metricStat": {
                            "metric": {
                                "namespace": "AWS/EC2",
                                "metricName": "CPUUtilization",
                                "dimensions": [
                                    {"name": "InstanceId", "value": rng.choice(acct.instance_ids)}
                                ],
                            },
                            "period": 300,
                            "stat": "Average",
                        },
                    }
                ],
                "maxDatapoints": 100800,
            },
        )
    if choice == 5:
        return "logs", "DescribeLogGroups", {"limit": 50}
    if choice == 6:
        return "cloudtrail", "LookupEvents", {"maxResults": 50}
    if choice == 7:
        return "ec2", "DescribeSnapshots", {"snapshotSet": {}, "ownersSet": {"items": [{"owner": "self"}]}}
    return "ecs", "ListClusters", {"maxResults": 100}


def _cli_command(service: str, name: str) -> str:
    return f"{service}.{re.sub(r'(?<!^)(?=[A-Z])', '-', name).lower()}"


def _bg_sre(acct: _Account, rng: random.Random, ts: datetime, user: TrailActor) -> list[dict[str, Any]]:
    service, name, params = _read_call(acct, rng)
    login = _active_login(acct, user, ts)
    if login is not None and (user.access_key_id is None or rng.random() < 0.6):
        ident = acct.ids.user_console(user, _console_session_key(acct, user, login), login, mfa=True)
        return [
            acct.rec.api(
                rng,
                identity=ident,
                ts=ts,
                service=service,
                name=name,
                region=acct.region,
                ip=acct.ip_of(user),
                ua=UA_CONSOLE,
                params=params,
                from_console=True,
            )
        ]
    if user.access_key_id is None:
        return []
    ident = acct.ids.user_key(user, user.access_key_id)
    return [
        acct.rec.api(
            rng,
            identity=ident,
            ts=ts,
            service=service,
            name=name,
            region=acct.region,
            ip=acct.ip_of(user),
            ua=UA_CLI.format(command=_cli_command(service, name)),
            params=params,
        )
    ]


def _bg_developer(acct: _Account, rng: random.Random, ts: datetime, user: TrailActor) -> list[dict[str, Any]]:
    ident = acct.ids.user_key(user, acct.long_term_key(user))
    pick = rng.randrange(4)
    if pick == 0:
        service, name, params = "ec2", "DescribeInstances", _instance_filter(acct, rng)
    elif pick == 1:
        service, name, params = "ecr", "DescribeRepositories", {"maxResults": 100}
    elif pick == 2:
        service, name, params = "logs", "DescribeLogGroups", {"limit": 50}
    else:
        service, name, params = "sts", "GetCallerIdentity", None
    return [
        acct.rec.api(
            rng,
            identity=ident,
            ts=ts,
            service=service,
            name=name,
            region=acct.region,
            ip=acct.ip_of(user),
            ua=UA_CLI.format(command=_cli_command(service, name)),
            params=params,
        )
    ]


def _bg_programmatic(
    acct: _Account, rng: random.Random, ts: datetime, user: TrailActor
) -> list[dict[str, Any]]:
    ident = acct.ids.user_key(user, acct.long_term_key(user))
    pick = rng.randrange(3)
    if pick == 0:
        service, name, params = "ecr", "GetAuthorizationToken", None
        response: dict[str, Any] | None = None
    elif pick == 1:
        service, name = "ecr", "DescribeImages"
        params, response = {"repositoryName": "matcarv/app", "maxResults": 100}, None
    else:
        service, name = "ecs", "DescribeServices"
        params = {"cluster": "matcarv-prod", "services": ["app"]}
        response = None
    return [
        acct.rec.api(
            rng,
            identity=ident,
            ts=ts,
            service=service,
            name=name,
            region=acct.region,
            ip=CI_RUNNER_IP,
            ua=UA_CI,
            params=params,
            response=response,
        )
    ]


def _role_key(acct: _Account, role: _Role, ts: datetime) -> tuple[str, datetime]:
    """Instance-profile credentials rotate every 6 hours; the key is stable within a rotation."""
    epoch_h = int(ts.timestamp()) // 3600
    rotation = epoch_h - epoch_h % 6
    created = datetime.fromtimestamp(rotation * 3600, tz=ts.tzinfo)
    return _stable_id("ASIA", 16, acct.account_id, role.role_arn, role.session, str(rotation)), created


def _bg_app(acct: _Account, rng: random.Random, ts: datetime) -> list[dict[str, Any]]:
    base = rng.choice([acct.app_role, *acct.extra_roles])
    role = _Role(base.name, rng.choice(acct.instance_ids), base.role_arn) if base is acct.app_role else base
    key, created = _role_key(acct, role, ts)
    ident = acct.ids.assumed_role(role, key, created)
    pick = rng.randrange(6)
    error = None
    resources = None
    response: dict[str, Any] | None = None
    read_only = True
    if pick == 0:
        service, name, params = (
            "ssm",
            "GetParameter",
            {"name": "/matcarv/prod/db-url", "withDecryption": True},
        )
        if rng.random() < 0.04:
            error = (
                "AccessDenied",
                f"User: {ident['arn']} is not authorized to perform: ssm:GetParameter on resource: "
                f"arn:aws:ssm:{acct.region}:{acct.account_id}:parameter/matcarv/prod/db-url because no "
                "identity-based policy allows the ssm:GetParameter action",
            )
    elif pick == 1:
        service, name, params = "secretsmanager", "GetSecretValue", {"secretId": "prod/matcarv/db"}
    elif pick == 2:
        key_id = uuid.UUID(bytes=hashlib.sha256(f"kms:{acct.account_id}".encode()).digest()[:16], version=4)
        key_arn = f"arn:aws:kms:{acct.region}:{acct.account_id}:key/{key_id}"
        service, name, params = "kms", "Decrypt", {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        resources = [{"accountId": acct.account_id, "type": "AWS::KMS::Key", "ARN": key_arn}]
    elif pick == 3:
        service, name, params = (
            "ec2",
            "DescribeTags",
            {
                "filterSet": {
                    "items": [{"name": "resource-id", "valueSet": {"items": [{"value": role.session}]}}]
                }
            },
        )
    else:
        service, name, read_only = "monitoring", "PutMetricData", False
        metric, unit, low, high = rng.choice(
            [
                ("RequestCount", "Count", 200, 2000),
                ("QueueDepth", "Count", 0, 40),
                ("CacheHitRatio", "Percent", 80, 99),
            ]
        )
        params = {
            "namespace": "MatCarv/App",
            "metricData": [
                {
                    "metricName": metric,
                    "dimensions": [{"name": "InstanceId", "value": role.session}],
                    "value": round(rng.uniform(low, high), 1),
                    "unit": unit,
                }
            ],
        }
    return [
        acct.rec.api(
            rng,
            identity=ident,
            ts=ts,
            service=service,
            name=name,
            region=acct.region,
            ip=NAT_GATEWAY_IP,
            ua=UA_BOTO,
            params=params,
            response=response,
            read_only=read_only,
            error=error,
            resources=resources,
        )
    ]


def _bg_automation(acct: _Account, rng: random.Random, ts: datetime) -> list[dict[str, Any]]:
    role = acct.automation_role
    key, created = _role_key(acct, role, ts)
    ident = acct.ids.assumed_role(role, key, created)
    common: dict[str, Any] = {"identity": ident, "ip": NAT_GATEWAY_IP, "ua": UA_BOTO}
    pick = rng.randrange(8)
    if pick == 0:
        return [
            acct.rec.api(
                rng,
                ts=ts,
                service="ce",
                name="GetCostAndUsage",
                region=GLOBAL_REGION,
                params={
                    "timePeriod": {
                        "start": (ts - timedelta(days=14)).date().isoformat(),
                        "end": ts.date().isoformat(),
                    },
                    "granularity": "DAILY",
                    "metrics": ["UnblendedCost"],
                    "groupBy": [{"type": "DIMENSION", "key": "SERVICE"}],
                },
                **common,
            )
        ]
    if pick == 1:
        return [
            acct.rec.api(
                rng,
                ts=ts,
                service="cloudtrail",
                name="GetTrailStatus",
                region=acct.region,
                params={"name": acct.trail_name},
                **common,
            )
        ]
    if pick == 2:
        return [
            acct.rec.api(
                rng,
                ts=ts,
                service="monitoring",
                name="PutMetricData",
                region=acct.region,
                read_only=False,
                params={
                    "namespace": "MatCarv/AIOps",
                    "metricData": [
                        {
                            "metricName": "PipelineRunSeconds",
                            "value": round(rng.uniform(20, 400), 1),
                            "unit": "Seconds",
                        }
                    ],
                },
                **common,
            )
        ]
    service, name, params = _read_call(acct, rng)
    return [acct.rec.api(rng, ts=ts, service=service, name=name, region=acct.region, params=params, **common)]


def _bg_run_instances(acct: _Account, rng: random.Random, ts: datetime) -> list[dict[str, Any]]:
    role = acct.automation_role
    key, created = _role_key(acct, role, ts)
    ident = acct.ids.assumed_role(role, key, created)
    instance_id = "i-0" + _rand_hex(rng, 16)
    subnet = "subnet-0" + _rand_hex(rng, 16)
    tags = [{"key": "Name", "value": "matcarv-worker"}, {"key": "ManagedBy", "value": "aiops"}]
    run = acct.rec.api(
        rng,
        identity=ident,
        ts=ts,
        service="ec2",
        name="RunInstances",
        region=acct.region,
        ip=NAT_GATEWAY_IP,
        ua=UA_BOTO,
        read_only=False,
        params={
            "instancesSet": {"items": [{"imageId": "ami-0c02fb55956c7d316", "minCount": 1, "maxCount": 1}]},
            "instanceType": "t3.medium",
            "subnetId": subnet,
            "monitoring": {"enabled": True},
            "disableApiTermination": False,
            "disableApiStop": False,
        },
        response=_run_response(acct, rng, [instance_id], "t3.medium", acct.region, subnet, ts),
    )
    tag = acct.rec.api(
        rng,
        identity=ident,
        ts=ts + timedelta(seconds=rng.randint(2, 9)),
        service="ec2",
        name="CreateTags",
        region=acct.region,
        ip=NAT_GATEWAY_IP,
        ua=UA_BOTO,
        read_only=False,
        params={"resourcesSet": {"items": [{"resourceId": instance_id}]}, "tagSet": {"items": tags}},
        response={"requestId": _uuid(rng), "_return": True},
    )
    return [run, tag]


def _run_response(
    acct: _Account,
    rng: random.Random,
    instance_ids: list[str],
    itype: str,
    region: str,
    subnet: str,
    ts: datetime,
) -> dict[str, Any]:
    return {
        "requestId": _uuid(rng),
        "reservationId": "r-0" + _rand_hex(rng, 16),
        "ownerId": acct.account_id,
        "groupSet": {},
        "instancesSet": {
            "items": [
                {
                    "instanceId": iid,
                    "imageId": "ami-0c02fb55956c7d316",
                    "instanceState": {"code": 0, "name": "pending"},
                    "amiLaunchIndex": n,
                    "instanceType": itype,
                    "launchTime": int(ts.timestamp() * 1000),
                    "placement": {"availabilityZone": f"{region}a", "tenancy": "default"},
                    "subnetId": subnet,
                    "monitoring": {"state": "disabled"},
                }
                for n, iid in enumerate(instance_ids)
            ]
        },
    }


def _bg_service_assume(acct: _Account, rng: random.Random, ts: datetime) -> list[dict[str, Any]]:
    if rng.random() < 0.7:
        role = _Role(acct.app_role.name, rng.choice(acct.instance_ids), acct.app_role.role_arn)
        principal = "ec2.amazonaws.com"
    else:
        role, principal = acct.lambda_role, "lambda.amazonaws.com"
    return [
        acct.rec.service_assume_role(rng, ts=ts, region=acct.region, service_principal=principal, role=role)
    ]


def _console_logins(
    acct: _Account, rng: random.Random, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    for user in acct.sres:
        for day in (midnight, midnight + timedelta(days=1)):
            login = _login_time(acct, user, day)
            if not start <= login < end:
                continue
            typo = random.Random(f"cloudtrail-typo:{acct.seed}:{user.name}:{day.date().isoformat()}").random()
            if typo < 0.2 and login - timedelta(seconds=40) >= start:
                failed = acct.ids.user_key(user, "")
                out.append(
                    acct.rec.console_login(
                        rng,
                        identity=failed,
                        ts=login - timedelta(seconds=40),
                        ip=acct.ip_of(user),
                        ua=UA_BROWSER,
                        success=False,
                        mfa_used=False,
                    )
                )
            ident = acct.ids.user_console(user, "", login, mfa=True)
            out.append(
                acct.rec.console_login(
                    rng,
                    identity=ident,
                    ts=login,
                    ip=acct.ip_of(user),
                    ua=UA_BROWSER,
                    success=True,
                    mfa_used=True,
                )
            )
    return out


def _background(acct: _Account, rng: random.Random, start: datetime) -> list[dict[str, Any]]:
    end = start + timedelta(hours=1)
    mid = start + timedelta(minutes=30)
    busy = _work_hours(mid)
    records = _console_logins(acct, rng, start, end)
    target = min(40, max(15, (30 if busy else 18) + rng.randint(-3, 8)))

    actors: list[tuple[float, Callable[[random.Random, datetime], list[dict[str, Any]]]]] = [
        (6.0, lambda r, t: _bg_app(acct, r, t)),
        (3.0, lambda r, t: _bg_automation(acct, r, t)),
        (1.5, lambda r, t: _bg_service_assume(acct, r, t)),
    ]
    for u in acct.sres:
        def sre(r: random.Random, t: datetime, u: TrailActor = u) -> list[dict[str, Any]]:
            return _bg_sre(acct, r, t, u)

        actors.append((3.0 if busy else 0.2, sre))
    for u in acct.developers:
        def developer(r: random.Random, t: datetime, u: TrailActor = u) -> list[dict[str, Any]]:
            return _bg_developer(acct, r, t, u)

        actors.append((1.0 if busy else 0.05, developer))
    for u in acct.programmatic:
        def programmatic(r: random.Random, t: datetime, u: TrailActor = u) -> list[dict[str, Any]]:
            return _bg_programmatic(acct, r, t, u)

        actors.append((1.2 if busy else 0.3, programmatic))
    if rng.random() < 0.08:
        records.extend(_bg_run_instances(acct, rng, start + timedelta(seconds=rng.randrange(3000))))

    weights = [w for w, _ in actors]
    attempts = 0
    while len(records) < target and attempts < 400:
        attempts += 1
        _, make = rng.choices(actors, weights=weights)[0]
        records.extend(make(rng, start + timedelta(seconds=rng.randrange(3600))))
    return records[:40]


# --------------------------------------------------------------------------------------
# Injected findings
# --------------------------------------------------------------------------------------


@dataclass
class _Finding:
    detection: str
    records: list[dict[str, Any]]
    flagged: list[dict[str, Any]]
    actor: TrailActor
    detail: dict[str, Any]
    aggregate: bool = False


def _denied_message(arn: str, action: str, resource: str) -> str:
    return (
        f"User: {arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


def _injections(acct: _Account, anchor: datetime) -> list[_Finding]:
    rng = random.Random(f"cloudtrail-injected:{acct.seed}:{acct.account_id}:{acct.region}")
    rec, ids, region = acct.rec, acct.ids, acct.region
    acc = acct.account_id

    def at(hours_before: int, minutes: int, seconds: int = 0) -> datetime:
        return anchor - timedelta(hours=hours_before) + timedelta(minutes=minutes, seconds=seconds)

    findings: list[_Finding] = []

    # -30h: root console sign-in and a root API call
    root = acct.root
    t = at(30, 7, 12)
    login = rec.console_login(
        rng,
        identity={"type": "Root", "principalId": acc, "arn": root.arn, "accountId": acc, "accessKeyId": ""},
        ts=t,
        ip=ROOT_IP,
        ua=UA_BROWSER,
        success=True,
        mfa_used=True,
    )
    root_key = _rand_key(rng, "ASIA")
    call = rec.api(
        rng,
        identity=ids.root_console(root, root_key, t, mfa=True),
        ts=at(30, 9, 40),
        service="iam",
        name="GetAccountSummary",
        region=GLOBAL_REGION,
        ip=ROOT_IP,
        ua=UA_CONSOLE,
        from_console=True,
    )
    findings.append(_Finding("root_account_usage", [login], [login], root, {"mfa_used": "Yes"}))
    findings.append(_Finding("root_account_usage", [call], [call], root, {"session_access_key_id": root_key}))

    # -28h: the compromised user's leaked key enumerates the account
    comp = acct.compromised
    old_key = acct.long_term_key(comp)
    ident = ids.user_key(comp, old_key)
    t0 = at(28, 14, 0)
    whoami = rec.api(
        rng,
        identity=ident,
        ts=t0,
        service="sts",
        name="GetCallerIdentity",
        region=region,
        ip=ATTACKER_IP,
        ua=UA_ATTACKER_CLI,
    )
    probes: list[tuple[str, str, str, str]] = [
        ("iam", "ListUsers", "AccessDenied", f"arn:aws:iam::{acc}:user/"),
        ("iam", "ListRoles", "AccessDenied", f"arn:aws:iam::{acc}:role/"),
        ("iam", "ListPolicies", "AccessDenied", f"arn:aws:iam::{acc}:policy/"),
        ("iam", "GetAccountAuthorizationDetails", "AccessDenied", "*"),
        ("iam", "ListAccessKeys", "AccessDenied", f"arn:aws:iam::{acc}:user/{comp.name}"),
        ("ec2", "DescribeInstances", "Client.UnauthorizedOperation", "*"),
        ("ec2", "DescribeSecurityGroups", "Client.UnauthorizedOperation", "*"),
        ("ec2", "DescribeVpcs", "Client.UnauthorizedOperation", "*"),
        ("ec2", "DescribeSnapshots", "Client.UnauthorizedOperation", "*"),
        ("s3", "ListBuckets", "AccessDenied", "*"),
        ("rds", "DescribeDBInstances", "AccessDenied", f"arn:aws:rds:{region}:{acc}:db:*"),
        ("cloudtrail", "DescribeTrails", "AccessDenied", "*"),
        ("lambda", "ListFunctions20150331", "AccessDenied", "*"),
        ("secretsmanager", "ListSecrets", "AccessDenied", "*"),
    ]
    burst: list[dict[str, Any]] = []
    for n in range(28):
        service, name, code, resource = probes[n % len(probes)]
        action = f"{service}:{name.removesuffix('20150331')}"
        if code == "Client.UnauthorizedOperation":
            message = "You are not authorized to perform this operation. " + _denied_message(
                comp.arn, action, resource
            )
        else:
            message = _denied_message(comp.arn, action, resource)
        global_service = service in ("iam", "s3")
        burst.append(
            rec.api(
                rng,
                identity=ident,
                ts=t0 + timedelta(seconds=5 + n * 8 + rng.randint(0, 4)),
                service=service,
                name=name,
                region=GLOBAL_REGION if global_service else region,
                ip=ATTACKER_IP,
                ua=UA_ATTACKER_CLI,
                params=None,
                error=(code, message),
            )
        )
    findings.append(
        _Finding(
            "access_denied_burst",
            [whoami, *burst],
            burst,
            comp,
            {
                "count": len(burst),
                "error_codes": sorted({r["errorCode"] for r in burst}),
                "window_start": burst[0]["eventTime"],
                "window_end": burst[-1]["eventTime"],
                "access_key_id": old_key,
                "source_ip": ATTACKER_IP,
            },
            aggregate=True,
        )
    )

    # -26h: MFA-less console sign-in, privilege escalation and a new access key
    bob = acct.no_mfa_console
    t = at(26, 3, 27)
    login = rec.console_login(
        rng,
        identity=ids.user_console(bob, "", t, mfa=False),
        ts=t,
        ip=ATTACKER_IP,
        ua=UA_ATTACKER_BROWSER,
        success=True,
        mfa_used=False,
    )
    findings.append(_Finding("console_login_without_mfa", [login], [login], bob, {"source_ip": ATTACKER_IP}))
    console = ids.user_console(bob, _rand_key(rng, "ASIA"), t, mfa=False)
    attach = rec.api(
        rng,
        identity=console,
        ts=at(26, 11, 5),
        service="iam",
        name="AttachUserPolicy",
        region=GLOBAL_REGION,
        ip=ATTACKER_IP,
        ua=UA_CONSOLE,
        read_only=False,
        from_console=True,
        params={"userName": comp.name, "policyArn": ADMIN_POLICY_ARN},
    )
    findings.append(
        _Finding(
            "iam_policy_change",
            [attach],
            [attach],
            bob,
            {"target_user": comp.name, "policy_arn": ADMIN_POLICY_ARN},
        )
    )
    document = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
        indent=4,
    )
    put = rec.api(
        rng,
        identity=console,
        ts=at(26, 13, 48),
        service="iam",
        name="PutUserPolicy",
        region=GLOBAL_REGION,
        ip=ATTACKER_IP,
        ua=UA_CONSOLE,
        read_only=False,
        from_console=True,
        params={"userName": comp.name, "policyName": "break-glass", "policyDocument": document},
    )
    findings.append(
        _Finding(
            "iam_policy_change", [put], [put], bob, {"target_user": comp.name, "policy_name": "break-glass"}
        )
    )
    new_key = _rand_key(rng, "AKIA")
    t = at(26, 16, 31)
    create = rec.api(
        rng,
        identity=console,
        ts=t,
        service="iam",
        name="CreateAccessKey",
        region=GLOBAL_REGION,
        ip=ATTACKER_IP,
        ua=UA_CONSOLE,
        read_only=False,
        from_console=True,
        params={"userName": comp.name},
        response={
            "accessKey": {
                "userName": comp.name,
                "accessKeyId": new_key,
                "status": "Active",
                "createDate": _java_date(t),
            }
        },
    )
    findings.append(
        _Finding(
            "access_key_created",
            [create],
            [create],
            bob,
            {"target_user": comp.name, "access_key_id": new_key},
        )
    )

    # -20h: the new key opens SSH on the bastion security group to the world
    attacker = ids.user_key(comp, new_key)
    rule_id = "sgr-0" + _rand_hex(rng, 16)
    ingress = rec.api(
        rng,
        identity=attacker,
        ts=at(20, 22, 9),
        service="ec2",
        name="AuthorizeSecurityGroupIngress",
        region=region,
        ip=ATTACKER_IP,
        ua=UA_ATTACKER_CLI,
        read_only=False,
        params={
            "groupId": acct.bastion_sg_id,
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "groups": {},
                        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                        "ipv6Ranges": {},
                        "prefixListIds": {},
                    }
                ]
            },
        },
        response={
            "requestId": _uuid(rng),
            "_return": True,
            "securityGroupRuleSet": {
                "items": [
                    {
                        "groupOwnerId": acc,
                        "groupId": acct.bastion_sg_id,
                        "securityGroupRuleId": rule_id,
                        "isEgress": False,
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "cidrIpv4": "0.0.0.0/0",
                    }
                ]
            },
        },
    )
    findings.append(
        _Finding(
            "security_group_opened_to_world",
            [ingress],
            [ingress],
            comp,
            {
                "group_id": acct.bastion_sg_id,
                "cidr": "0.0.0.0/0",
                "port": 22,
                "protocol": "tcp",
                "rule_id": rule_id,
            },
        )
    )

    # -8h: instances described and launched in a region the account never uses
    odd = UNUSUAL_REGION if region != UNUSUAL_REGION else "me-south-1"
    t0 = at(8, 31, 2)
    odd_records: list[dict[str, Any]] = []
    launched: list[str] = []
    plan = [
        "DescribeInstances",
        "DescribeInstances",
        "RunInstances",
        "RunInstances",
        "RunInstances",
        "DescribeInstances",
    ]
    for n, name in enumerate(plan):
        ts = t0 + timedelta(seconds=n * 55 + rng.randint(0, 20))
        if name == "DescribeInstances":
            odd_records.append(
                rec.api(
                    rng,
                    identity=attacker,
                    ts=ts,
                    service="ec2",
                    name=name,
                    region=odd,
                    ip=ATTACKER_IP,
                    ua=UA_ATTACKER_CLI,
                    params={"instancesSet": {}, "filterSet": {}},
                )
            )
            continue
        ids_now = ["i-0" + _rand_hex(rng, 16) for _ in range(4)]
        launched.extend(ids_now)
        subnet = "subnet-0" + _rand_hex(rng, 16)
        odd_records.append(
            rec.api(
                rng,
                identity=attacker,
                ts=ts,
                service="ec2",
                name=name,
                region=odd,
                ip=ATTACKER_IP,
                ua=UA_ATTACKER_CLI,
                read_only=False,
                params={
                    "instancesSet": {
                        "items": [{"imageId": "ami-0b1f9c3e5a7d2e4f6", "minCount": 4, "maxCount": 4}]
                    },
                    "instanceType": "c5.24xlarge",
                    "subnetId": subnet,
                    "disableApiTermination": False,
                },
                response=_run_response(acct, rng, ids_now, "c5.24xlarge", odd, subnet, ts),
            )
        )
    findings.append(
        _Finding(
            "unusual_region_activity",
            odd_records,
            odd_records,
            comp,
            {
                "count": len(odd_records),
                "event_names": sorted({r["eventName"] for r in odd_records}),
                "home_region": region,
                "instance_ids": launched,
                "window_start": odd_records[0]["eventTime"],
                "window_end": odd_records[-1]["eventTime"],
            },
            aggregate=True,
        )
    )

    # -6h: the trail is reconfigured, then stopped
    trail_arn = f"arn:aws:cloudtrail:{region}:{acc}:trail/{acct.trail_name}"
    update = rec.api(
        rng,
        identity=attacker,
        ts=at(6, 40, 17),
        service="cloudtrail",
        name="UpdateTrail",
        region=region,
        ip=ATTACKER_IP,
        ua=UA_ATTACKER_CLI,
        read_only=False,
        params={"name": acct.trail_name, "includeGlobalServiceEvents": False, "isMultiRegionTrail": False},
        response={
            "name": acct.trail_name,
            "s3BucketName": acct.trail_bucket,
            "includeGlobalServiceEvents": False,
            "isMultiRegionTrail": False,
            "trailARN": trail_arn,
            "logFileValidationEnabled": False,
            "isOrganizationTrail": False,
        },
    )
    stop = rec.api(
        rng,
        identity=attacker,
        ts=at(6, 41, 3),
        service="cloudtrail",
        name="StopLogging",
        region=region,
        ip=ATTACKER_IP,
        ua=UA_ATTACKER_CLI,
        read_only=False,
        params={"name": acct.trail_name},
    )
    findings.append(
        _Finding("cloudtrail_tampering", [update], [update], comp, {"trail_name": acct.trail_name})
    )
    findings.append(_Finding("cloudtrail_tampering", [stop], [stop], comp, {"trail_name": acct.trail_name}))
    return findings


# --------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _log_key(account_id: str, region: str, delivered: datetime, rng: random.Random) -> str:
    suffix = "".join(rng.choice(_ALNUM) for _ in range(16))
    return (
        f"AWSLogs/{account_id}/CloudTrail/{region}/{delivered:%Y/%m/%d}/"
        f"{account_id}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{suffix}.json.gz"
    )


def _encode(records: list[dict[str, Any]]) -> bytes:
    payload = json.dumps({"Records": records}, separators=(",", ":"), ensure_ascii=False).encode()
    return gzip.compress(payload, compresslevel=6, mtime=0)


def build_cloudtrail_logs(
    *,
    account_id: str,
    region: str,
    anchor: datetime,
    seed: int,
    users: list[TrailActor],
    resources: dict[str, str],
    hours: int = 48,
) -> tuple[list[tuple[str, bytes]], list[InjectedSecurityEvent]]:
    """CloudTrail log files for the ``hours`` before ``anchor`` and the findings injected in them.

    Returns ``(files, injected)``: ``files`` is a list of ``(s3_key, gzip_bytes)`` sorted by key
    timestamp then key; ``injected`` lists the injected findings sorted by event time.
    """
    if anchor.tzinfo is None or anchor.utcoffset() != timedelta(0):
        raise ValueError(f"anchor must be a timezone-aware UTC datetime, got {anchor!r}")
    if hours < 1:
        raise ValueError(f"hours must be >= 1, got {hours}")
    anchor = anchor.replace(microsecond=0)
    window_start = anchor - timedelta(hours=hours)
    acct = _build_account(account_id, region, seed, users, resources)

    def bucket_of(record: dict[str, Any]) -> tuple[str, int]:
        """(awsRegion, k): the record belongs to the hour [anchor - k h, anchor - (k-1) h)."""
        before = anchor - _parse_ts(record["eventTime"])
        return record["awsRegion"], -(-before // timedelta(hours=1))

    buckets: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for k in range(hours, 0, -1):
        start = anchor - timedelta(hours=k)
        rng = random.Random(f"cloudtrail-bg:{seed}:{account_id}:{region}:{_iso(start)}")
        for record in _background(acct, rng, start):
            buckets.setdefault(bucket_of(record), []).append(record)

    kept: list[_Finding] = []
    for finding in _injections(acct, anchor):
        if any(_parse_ts(r["eventTime"]) < window_start for r in finding.records):
            continue
        kept.append(finding)
        for record in finding.records:
            buckets.setdefault(bucket_of(record), []).append(record)

    files: list[tuple[str, bytes]] = []
    keys: dict[tuple[str, int], str] = {}
    for reg, k in sorted(buckets, key=lambda rk: (-rk[1], rk[0])):
        delivered = anchor - timedelta(hours=k - 1)
        key_rng = random.Random(f"cloudtrail-key:{seed}:{account_id}:{reg}:{_iso(delivered)}")
        key = _log_key(account_id, reg, delivered, key_rng)
        keys[(reg, k)] = key
        records = sorted(buckets[(reg, k)], key=lambda r: r["eventTime"])
        files.append((key, _encode(records)))

    injected: list[InjectedSecurityEvent] = []
    counters: dict[str, int] = {}
    for finding in sorted(kept, key=lambda f: f.flagged[0]["eventTime"]):
        first = finding.flagged[0]
        counters[finding.detection] = counters.get(finding.detection, 0) + 1
        log_keys = sorted({keys[bucket_of(r)] for r in finding.flagged}, key=lambda k: k.split("_")[-2:])
        detail = {
            **finding.detail,
            "actor_name": finding.actor.name,
            "event_ids": [r["eventID"] for r in finding.flagged],
            "log_keys": log_keys,
        }
        if finding.aggregate:
            detail["event_names"] = sorted({r["eventName"] for r in finding.flagged})
        injected.append(
            InjectedSecurityEvent(
                id=f"{finding.detection}-{counters[finding.detection]}",
                detection=finding.detection,
                event_name=first["eventName"],
                event_time=first["eventTime"],
                actor=finding.actor.arn,
                region=first["awsRegion"],
                detail=detail,
                log_key=keys[bucket_of(first)],
            )
        )
    return files, injected


# --------------------------------------------------------------------------------------
# Reading back
# --------------------------------------------------------------------------------------


def parse_cloudtrail_file(data: bytes) -> list[dict]:
    """The records of one delivered CloudTrail file (gzip'd ``{"Records": [...]}``).

    Raises ``ValueError`` naming what is wrong for a truncated or corrupt gzip stream, non-UTF-8
    or invalid JSON, or JSON that is not ``{"Records": [<object>, ...]}``.
    """
    if not data:
        raise ValueError("malformed CloudTrail log file: empty")
    try:
        raw = gzip.decompress(data)
    except EOFError as exc:
        raise ValueError(f"truncated CloudTrail log file: gzip stream ends early ({exc})") from exc
    except (OSError, zlib.error) as exc:
        raise ValueError(f"malformed CloudTrail log file: not a valid gzip stream ({exc})") from exc
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"malformed CloudTrail log file: content is not UTF-8 ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed CloudTrail log file: invalid JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("Records"), list):
        raise ValueError('malformed CloudTrail log file: expected an object with a "Records" list')
    for n, record in enumerate(doc["Records"]):
        if not isinstance(record, dict):
            raise ValueError(
                f"malformed CloudTrail log file: record {n} is {type(record).__name__}, not an object"
            )
    return doc["Records"]


def truncated_file(data: bytes) -> bytes:
    """``data`` cut in half (at least one byte dropped): a delivery interrupted mid-upload."""
    return data[: max(0, min(len(data) // 2, len(data) - 1))]
