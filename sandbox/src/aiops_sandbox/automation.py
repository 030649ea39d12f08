"""Sandbox SSM Automation executor: the emulator's substitute for an API moto does not have.

moto 5.2.5 stores SSM documents (CreateDocument / GetDocument / versions) and answers SendCommand,
but it has no SSM Automation. Runbooks are real Automation documents (``schemaVersion: '0.3'``),
published with ``CreateDocument(DocumentType="Automation")`` and started with
``StartAutomationExecution``; the platform's code for that is the same against real AWS and the
sandbox. So the sandbox server intercepts five ``AmazonSSM.*`` JSON-protocol actions before they
reach moto (``SandboxApp.__call__`` -> :func:`handle`) and answers them here, in the real API's
shapes (field names from botocore's SSM service model) and with the real error codes (HTTP 400,
``__type``):

* ``StartAutomationExecution`` - the document comes from moto's SSM backend (name or ARN;
  ``DocumentVersion`` number, ``$DEFAULT`` or ``$LATEST``). Parameters are validated against the
  document: unknown names, required (no ``default``) present, ``type`` (String, StringList,
  Integer, Boolean, MapList, StringMap), ``allowedPattern`` (full match, every value),
  ``allowedValues``, ``minItems``/``maxItems``, ``minChars``/``maxChars``; defaults are filled in.
  ``ClientToken`` is idempotent (same token + same request -> same id; same token + different
  request -> ``IdempotentParameterMismatch``). The steps then run in a background thread, so the
  caller sees ``Pending``/``InProgress`` and later a terminal status, as on AWS.
* ``GetAutomationExecution``, ``DescribeAutomationExecutions`` (filters ``DocumentNamePrefix``,
  ``ExecutionStatus``, ``ExecutionId``, ``CurrentAction``, ``StartTimeBefore``,
  ``StartTimeAfter``, ``TagKey``; ``MaxResults``/``NextToken``), ``DescribeAutomationStepExecutions``
  (filters ``StepName``, ``StepExecutionStatus``, ``StepExecutionId``, ``Action``,
  ``StartTimeBefore``, ``StartTimeAfter``; ``ReverseOrder``; ``MaxResults``/``NextToken``) and
  ``StopAutomationExecution`` (-> ``Cancelling`` then ``Cancelled``).

Step actions (:data:`SUPPORTED_ACTIONS`) act on the emulated account through boto3 calls to the
emulator's own endpoint, with the caller's access key and region (from the SigV4 credential
scope), so their effects are ordinary emulator state that tests and the platform can observe:

* ``aws:executeAwsApi`` - ``Service``/``Api`` + API parameters; ``outputs`` with ``Selector``
  (JSONPath subset: ``$``, ``.name``, ``['name']``, ``[n]``, ``[*]``, ``..name``) and ``Type``
  String, Integer, Boolean, StringList, MapList, StringMap.
* ``aws:changeInstanceState`` - ``InstanceIds``, ``DesiredState`` running/stopped/terminated,
  ``CheckStateOnly``, ``Force``; waits until every instance is in the desired state.
* ``aws:waitForAwsResourceProperty`` / ``aws:assertAwsResourceProperty`` - ``PropertySelector`` and
  ``DesiredValues`` (every selected value must be desired; booleans match ``True`` or ``true``);
  the wait polls every :data:`POLL_SECONDS` until ``timeoutSeconds``.
* ``aws:branch`` - ``Choices`` (``Variable`` with StringEquals, EqualsIgnoreCase, StartsWith,
  EndsWith, Contains, NumericEquals, NumericGreater, NumericGreaterOrEquals, NumericLesser,
  NumericLesserOrEquals, BooleanEquals; ``And``/``Or``/``Not``) and ``Default``.
* ``aws:sleep`` - ``Duration`` (ISO 8601, e.g. ``PT5M``) or ``Timestamp``.
* ``aws:runCommand`` - SendCommand through moto, then ListCommands / GetCommandInvocation (moto
  has no ListCommandInvocations); outputs CommandId, Status, ResponseCode, Output.

Templating: ``{{ Param }}``, ``{{ Step.Output }}``, ``{{ global:REGION }}``,
``{{ global:ACCOUNT_ID }}``, ``{{ global:AWS_PARTITION }}``, ``{{ global:DATE }}``,
``{{ global:DATE_TIME }}``, ``{{ automation:EXECUTION_ID }}``; a string that is exactly one
reference takes the referenced value's native type (a StringList stays a list). Step fields:
``onFailure`` (Abort | Continue | step:Name), ``isCritical``, ``isEnd``, ``nextStep``,
``maxAttempts``, ``timeoutSeconds``. Document ``outputs`` ("Step.Output") become the execution's
``Outputs``. Any other action fails its step and aborts the execution - whatever the step's
``onFailure`` says - with a message naming the action: a rehearsal never reports Success for a
runbook it could not fully emulate. The same holds for an API that moto does not implement
(e.g. ``ssm:DescribeInstanceInformation``): the step fails with "the emulator (moto) does not
implement ssm.DescribeInstanceInformation ...".

Known differences from AWS (deliberate, for a local rehearsal account):

* ``assumeRole`` / ``AutomationAssumeRole``: when the parameter names a role, the steps run with
  that role's temporary credentials (moto STS ``AssumeRole``, without checking that the caller may
  pass it: moto has no ``iam:PassRole``); a role that does not exist fails the start under IAM
  enforcement and is ignored without it; otherwise with the caller's own access key and secret
  (looked up in moto's IAM). With ``INITIAL_NO_AUTH_ACTION_COUNT`` set, moto then authorises every
  step's API call against that role's / caller's policies, and the emulator authorises the
  automation calls themselves (``ssm:StartAutomationExecution`` ...) against the caller's
  (:func:`aiops_sandbox.emulator.authorize_automation`).
* ``aws:sleep`` really sleeps at most :data:`SLEEP_CAP_SECONDS`; the step's ``WarningMessage`` says
  so when it shortened a sleep.
* ``aws:runCommand`` has no agent: moto marks every command and invocation ``Success`` with
  ``ResponseCode`` 0 and empty output, and the command does not run. The step first checks that
  the instances exist and are running (SSM's ``InvalidInstanceId`` otherwise), then reports
  moto's status. (moto also lists every instance of the Region on a command sent by
  ``InstanceIds``; the step only looks at the requested ones.)
* Not supported (rejected at start with ``InvalidAutomationExecutionParametersException``):
  ``Mode=Interactive``, rate control (``Targets``, ``TargetMaps``, ``TargetParameterName``,
  ``TargetLocations``), ``AlarmConfiguration``. ``onCancel`` is ignored; ``StopAutomationExecution``
  ``Type=Complete`` cancels like ``Cancel``.
* ``StepExecutions`` lists steps as they start (a step skipped by a branch is not listed); AWS
  lists pending steps too. Document structure errors that AWS rejects at CreateDocument (moto
  accepts them) fail the execution with a message instead. An output whose ``Selector`` matches
  nothing is left out and named in the step's ``WarningMessage``. ``ExecutedBy`` is
  ``arn:aws:sts::<account>:user/moto``. ``FailureDetails`` uses AWS's stage/type vocabulary
  (InputValidation, PreVerification, Invocation, PostVerification / Verification, Action,
  Permission, Throttling, Internal) but the mapping is ours. Executions live in the server
  process's memory.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NoReturn

AUTOMATION_ACTIONS = frozenset({
    "StartAutomationExecution",
    "GetAutomationExecution",
    "DescribeAutomationExecutions",
    "DescribeAutomationStepExecutions",
    "StopAutomationExecution",
    "DescribeInstanceInformation",  # moto lacks it; runbooks using aws:runCommand check agents with it
})
TARGET_PREFIX = "AmazonSSM."
SUPPORTED_ACTIONS = (
    "aws:executeAwsApi",
    "aws:changeInstanceState",
    "aws:waitForAwsResourceProperty",
    "aws:assertAwsResourceProperty",
    "aws:branch",
    "aws:sleep",
    "aws:runCommand",
    "aws:executeScript",
)
SCRIPT_TIMEOUT_SECONDS = 600.0  # AWS's limit for aws:executeScript
# Runs an aws:executeScript step's Python in a child process, as SSM runs it in its own runtime:
# boto3 inside the script reaches the emulator through AWS_ENDPOINT_URL.
_SCRIPT_WRAPPER = r"""
import json, sys, types
job = json.load(sys.stdin)
module = types.ModuleType("automation_script")
exec(compile(job["script"], "<executeScript>", "exec"), module.__dict__)
result = getattr(module, job["handler"])(job["events"], None)
sys.stdout.write("\n__AUTOMATION_PAYLOAD__" + json.dumps(result, default=str))
"""
SLEEP_CAP_SECONDS = 2.0  # longest real sleep of an aws:sleep step in the sandbox
POLL_SECONDS = 0.25  # poll interval of wait-type steps
DEFAULT_STEP_TIMEOUT_SECONDS = 3600.0  # wait-type steps without timeoutSeconds
MAX_STEP_EXECUTIONS = 1000  # guard against nextStep / onFailure loops
TERMINAL = frozenset({"Success", "Failed", "TimedOut", "Cancelled", "CompletedWithSuccess",
                      "CompletedWithFailure", "Exited", "Rejected"})
NO_OUTPUT = "No output available yet because the step is not successfully executed"
PARAMETER_TYPES = ("String", "StringList", "Integer", "Boolean", "MapList", "StringMap")
DEFAULT_ACCOUNT_ID = "123456789012"


# --------------------------------------------------------------------------------------
# Errors in the real API's shape
# --------------------------------------------------------------------------------------


class AutomationError(Exception):
    """An API error: answered as HTTP 400 with ``{"__type": code, "message": ...}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _bad_parameters(message: str) -> AutomationError:
    return AutomationError("InvalidAutomationExecutionParametersException", message)


class _StepFailed(Exception):
    """A step attempt failed (FailureStage / FailureType follow AWS's vocabulary)."""

    def __init__(self, message: str, stage: str = "Invocation", kind: str = "Action",
                 status: str = "Failed", retryable: bool = True, fatal: bool = False) -> None:
        super().__init__(message)
        self.message, self.stage, self.kind, self.status, self.retryable = (
            message, stage, kind, status, retryable)
        self.fatal = fatal  # aborts the execution whatever the step's onFailure says


class _Cancelled(Exception):
    pass


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------


@dataclass
class _StepRecord:
    name: str
    action: str
    spec: dict[str, Any]
    step_execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "Pending"
    start: float | None = None
    end: float | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, list[str]] = field(default_factory=dict)
    failure_message: str | None = None
    failure_details: dict[str, Any] | None = None
    warning: str | None = None
    next_step: str | None = None
    valid_next_steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        out: dict[str, Any] = {
            "StepName": self.name,
            "Action": self.action,
            "OnFailure": str(spec.get("onFailure", "Abort")),
            "MaxAttempts": int(spec.get("maxAttempts", 1)),
            "StepStatus": self.status,
            "Inputs": dict(self.inputs),
            "Outputs": {k: list(v) for k, v in self.outputs.items()},
            "StepExecutionId": self.step_execution_id,
            "OverriddenParameters": {},
            "IsEnd": _truthy(spec.get("isEnd", False)),
            "IsCritical": _is_critical(spec),
        }
        if "timeoutSeconds" in spec:
            out["TimeoutSeconds"] = int(spec["timeoutSeconds"])
        if self.start is not None:
            out["ExecutionStartTime"] = self.start
        if self.end is not None:
            out["ExecutionEndTime"] = self.end
        if self.failure_message is not None:
            out["FailureMessage"] = self.failure_message
        if self.failure_details is not None:
            out["FailureDetails"] = self.failure_details
        if self.warning is not None:
            out["WarningMessage"] = self.warning
        if self.next_step is not None:
            out["NextStep"] = self.next_step
        elif spec.get("nextStep"):
            out["NextStep"] = str(spec["nextStep"])
        if self.valid_next_steps:
            out["ValidNextSteps"] = list(self.valid_next_steps)
        return out


@dataclass
class _Execution:
    execution_id: str
    account_id: str
    region: str
    endpoint: str
    access_key: str
    account_header: str | None
    document_name: str
    document_version: str
    document: dict[str, Any]
    parameters: dict[str, list[str]]  # wire form, defaults included
    values: dict[str, Any]  # native values for templating
    mode: str
    tags: list[dict[str, str]]
    status: str = "Pending"
    secret_key: str = "testing"
    session_token: str | None = None
    start: float = field(default_factory=time.time)
    end: float | None = None
    steps: list[_StepRecord] = field(default_factory=list)
    step_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # step -> output -> value
    step_wire: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    failure_message: str | None = None
    current_step: str | None = None
    current_action: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def executed_by(self) -> str:
        return f"arn:aws:sts::{self.account_id}:user/moto"

    def outputs(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for ref in self.document.get("outputs") or []:
            step, _, name = str(ref).partition(".")
            wire = self.step_wire.get(step, {}).get(name)
            result[str(ref)] = list(wire) if wire is not None else [NO_OUTPUT]
        return result

    def _common(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "AutomationExecutionId": self.execution_id,
            "DocumentName": self.document_name,
            "DocumentVersion": self.document_version,
            "AutomationExecutionStatus": self.status,
            "ExecutionStartTime": self.start,
            "ExecutedBy": self.executed_by,
            "Outputs": self.outputs(),
            "Mode": self.mode,
            "Targets": [],
            "ResolvedTargets": {"ParameterValues": [], "Truncated": False},
        }
        if self.end is not None:
            out["ExecutionEndTime"] = self.end
        if self.failure_message is not None:
            out["FailureMessage"] = self.failure_message
        if self.status not in TERMINAL and self.current_step is not None:
            out["CurrentStepName"] = self.current_step
            out["CurrentAction"] = self.current_action
        return out

    def to_json(self) -> dict[str, Any]:
        out = self._common()
        out["StepExecutions"] = [s.to_json() for s in self.steps]
        out["StepExecutionsTruncated"] = False
        out["Parameters"] = {k: list(v) for k, v in self.parameters.items()}
        return out

    def metadata(self) -> dict[str, Any]:
        out = self._common()
        out["LogFile"] = ""
        out["AutomationType"] = "Local"
        return out


_lock = threading.RLock()
_executions: dict[str, _Execution] = {}
_tokens: dict[tuple[str, str, str], tuple[str, str]] = {}  # (account, region, token) -> (fp, id)


def _now() -> float:
    return time.time()


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _is_critical(spec: dict[str, Any]) -> bool:
    if "isCritical" in spec:
        return _truthy(spec["isCritical"])
    return str(spec.get("onFailure", "Abort")) != "Continue"


# --------------------------------------------------------------------------------------
# WSGI entry point
# --------------------------------------------------------------------------------------


def is_automation_request(environ: dict[str, Any]) -> bool:
    """True for the five ``AmazonSSM.*`` automation actions this module answers."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target.startswith(TARGET_PREFIX) and target[len(TARGET_PREFIX):] in AUTOMATION_ACTIONS


@dataclass(frozen=True)
class _Caller:
    account_id: str
    region: str
    access_key: str
    account_header: str | None
    endpoint: str


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/")


def _caller(environ: dict[str, Any]) -> _Caller:
    import os

    match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    access_key, region = (match.group(1), match.group(2)) if match else ("testing", "us-east-1")
    header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if "MOTO_ACCOUNT_ID" in os.environ:
        account = os.environ["MOTO_ACCOUNT_ID"]
    elif header:
        account = str(header)
    else:
        try:
            from moto.iam.models import get_account_id_from

            account = get_account_id_from(access_key)
        except Exception:  # moto internals moved: fall back to its default account
            account = DEFAULT_ACCOUNT_ID
    host = str(environ.get("SERVER_NAME") or "127.0.0.1")  # the address the server is bound to
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    endpoint = f"http://{host}:{environ.get('SERVER_PORT', '80')}"
    return _Caller(account, region, access_key, str(header) if header else None, endpoint)


def _respond(start_response: Any, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.1"),
                            ("Content-Length", str(len(data))),
                            ("x-amzn-RequestId", str(uuid.uuid4()))])
    return [data]


def handle(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answer one SSM Automation API call (JSON protocol) in the real API's shapes."""
    action = str(environ.get("HTTP_X_AMZ_TARGET", ""))[len(TARGET_PREFIX):]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            request = json.loads(raw or b"{}")
        except ValueError as exc:
            raise AutomationError("SerializationException", f"request body is not JSON: {exc}") from exc
        if not isinstance(request, dict):
            raise AutomationError("SerializationException", "request body must be a JSON object")
        caller = _caller(environ)
        handlers: dict[str, Callable[[_Caller, dict[str, Any]], dict[str, Any]]] = {
            "StartAutomationExecution": start_automation_execution,
            "GetAutomationExecution": get_automation_execution,
            "DescribeAutomationExecutions": describe_automation_executions,
            "DescribeAutomationStepExecutions": describe_automation_step_executions,
            "StopAutomationExecution": stop_automation_execution,
            "DescribeInstanceInformation": describe_instance_information,
        }
        return _respond(start_response, "200 OK", handlers[action](caller, request))
    except AutomationError as exc:
        return _respond(start_response, "400 Bad Request", {"__type": exc.code, "message": exc.message})
    except Exception as exc:  # a sandbox bug must surface as an AWS-style 500, not a hang
        return _respond(start_response, "500 Internal Server Error",
                        {"__type": "InternalServerError",
                         "message": f"sandbox automation executor: {type(exc).__name__}: {exc}"})


def describe_instance_information(caller: _Caller, request: dict[str, Any]) -> dict[str, Any]:
    """Every running EC2 instance of the simulated account has an online SSM agent (the sandbox's
    premise: a managed fleet). Supports the InstanceIds filter; one page."""
    from moto.ec2.models import ec2_backends

    wanted: set[str] = set()
    for flt in request.get("Filters") or request.get("InstanceInformationFilterList") or []:
        if flt.get("Key") in {"InstanceIds", "instanceIds"}:
            wanted |= set(flt.get("Values") or flt.get("valueSet") or [])
    backend = ec2_backends[caller.account_id][caller.region]
    items = []
    for reservation in backend.reservations.values():
        for inst in reservation.instances:
            if inst.state != "running" or (wanted and inst.id not in wanted):
                continue
            items.append({"InstanceId": inst.id, "PingStatus": "Online", "PlatformType": "Linux",
                          "PlatformName": "Amazon Linux", "PlatformVersion": "2023", "AgentVersion": "3.3.1142.0",
                          "IsLatestVersion": True, "ResourceType": "EC2Instance",
                          "IPAddress": inst.private_ip, "ComputerName": f"{inst.id}.ec2.internal",
                          "LastPingDateTime": time.time()})
    return {"InstanceInformationList": items}


def _require(request: dict[str, Any], member: str) -> Any:
    if member not in request or request[member] in (None, ""):
        raise AutomationError("ValidationException",
                              f"1 validation error detected: Value null at '{member[0].lower()}"
                              f"{member[1:]}' failed to satisfy constraint: Member must not be null")
    return request[member]


# --------------------------------------------------------------------------------------
# StartAutomationExecution
# --------------------------------------------------------------------------------------


def _load_document(caller: _Caller, name: str, version: str | None) -> tuple[str, str, dict[str, Any]]:
    from moto.ssm.models import ssm_backends

    short = name.split(":document/", 1)[1] if name.startswith("arn:") and ":document/" in name else name
    backend = ssm_backends[caller.account_id][caller.region]
    documents = backend._documents.get(short)
    if documents is None:
        raise AutomationError(
            "AutomationDefinitionNotFoundException",
            f"Automation definition {short} not found (the sandbox has only the documents created "
            f"in it with CreateDocument; AWS-owned runbooks are not preinstalled).")
    wanted = None if version in (None, "", "$DEFAULT") else version
    document = documents.find(wanted, None, strict=False)
    if document is None:
        raise AutomationError("AutomationDefinitionVersionNotFoundException",
                              f"Automation definition {short}:{version} not found.")
    if document.document_type != "Automation":
        raise AutomationError(
            "AutomationDefinitionNotFoundException",
            f"Document {short} is a {document.document_type} document, not an Automation document.")
    content = document.content_json
    if not isinstance(content, dict):
        raise AutomationError("AutomationDefinitionNotFoundException",
                              f"Document {short} has no parsable content.")
    return short, str(document.document_version), content


def _default_to_wire(default: Any, ptype: str) -> list[str]:
    if ptype == "StringList":
        return [str(v) for v in default] if isinstance(default, list) else [str(default)]
    if ptype == "MapList":
        items = default if isinstance(default, list) else [default]
        return [v if isinstance(v, str) else json.dumps(v) for v in items]
    if ptype == "StringMap":
        return [default if isinstance(default, str) else json.dumps(default)]
    if ptype == "Boolean" and isinstance(default, bool):
        return ["true" if default else "false"]
    return [str(default)]


def _coerce(name: str, ptype: str, values: list[str]) -> Any:
    def single() -> str:
        if len(values) != 1:
            raise _bad_parameters(f'Parameter "{name}" of type {ptype} takes exactly one value, '
                                  f"got {len(values)}.")
        return values[0]

    if ptype == "String":
        return single()
    if ptype == "Integer":
        text = single()
        try:
            return int(text)
        except ValueError:
            raise _bad_parameters(f'Parameter "{name}" has value "{text}", which is not an Integer.') from None
    if ptype == "Boolean":
        text = single()
        if text.lower() not in {"true", "false"}:
            raise _bad_parameters(f'Parameter "{name}" has value "{text}", which is not a Boolean '
                                  f"(true or false).")
        return text.lower() == "true"
    if ptype == "StringList":
        return list(values)
    if ptype in {"MapList", "StringMap"}:
        parsed = []
        for text in values:
            try:
                item = json.loads(text)
            except ValueError:
                item = None
            if not isinstance(item, dict):
                raise _bad_parameters(f'Parameter "{name}" of type {ptype} has value "{text}", which is '
                                      f"not a JSON object.")
            parsed.append(item)
        if ptype == "StringMap":
            if len(parsed) != 1:
                raise _bad_parameters(f'Parameter "{name}" of type StringMap takes exactly one value.')
            return parsed[0]
        return parsed
    raise _bad_parameters(f'Parameter "{name}" has type {ptype!r} in the document; Automation supports '
                          f"{', '.join(PARAMETER_TYPES)}.")


def _check_constraints(name: str, spec: dict[str, Any], ptype: str, values: list[str]) -> None:
    pattern = spec.get("allowedPattern")
    if pattern is not None:
        try:
            regex = re.compile(str(pattern))
        except re.error as exc:
            raise _bad_parameters(f'Parameter "{name}" has an invalid allowedPattern in the document: '
                                  f"{exc}.") from exc
        for value in values:
            if regex.fullmatch(value) is None:
                raise _bad_parameters(
                    f'Parameter "{name}" "{value}" failed to satisfy constraint: Member must satisfy '
                    f"regular expression pattern: {pattern}")
    allowed = spec.get("allowedValues")
    if allowed is not None:
        allowed_text = [_text(v) for v in allowed]
        for value in values:
            if value not in allowed_text:
                raise _bad_parameters(f'Parameter "{name}" "{value}" failed to satisfy constraint: Member '
                                      f"must be one of {allowed_text}")
    if ptype in {"StringList", "MapList"}:
        if "minItems" in spec and len(values) < int(spec["minItems"]):
            raise _bad_parameters(f'Parameter "{name}" needs at least {spec["minItems"]} item(s).')
        if "maxItems" in spec and len(values) > int(spec["maxItems"]):
            raise _bad_parameters(f'Parameter "{name}" takes at most {spec["maxItems"]} item(s).')
    for value in values:
        if "minChars" in spec and len(value) < int(spec["minChars"]):
            raise _bad_parameters(f'Parameter "{name}" "{value}" is shorter than {spec["minChars"]} '
                                  f"characters.")
        if "maxChars" in spec and len(value) > int(spec["maxChars"]):
            raise _bad_parameters(f'Parameter "{name}" "{value}" is longer than {spec["maxChars"]} '
                                  f"characters.")


def validate_parameters(declared: dict[str, Any] | None,
                        given: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Check ``given`` ({name: [values]}) against a document's ``parameters``; returns the wire
    form with defaults filled in and the native values used for templating."""
    declared = declared or {}
    if not isinstance(given, dict):
        raise _bad_parameters("Parameters must be a map of parameter name to a list of values.")
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise _bad_parameters(f"Parameters {unknown} are not defined in the document "
                              f"(defined: {sorted(declared)}).")
    wire: dict[str, list[str]] = {}
    native: dict[str, Any] = {}
    missing = []
    for name, spec in declared.items():
        spec = spec if isinstance(spec, dict) else {}
        ptype = str(spec.get("type", "String"))
        if ptype not in PARAMETER_TYPES:
            raise _bad_parameters(f'Parameter "{name}" has type {ptype!r} in the document; Automation '
                                  f"supports {', '.join(PARAMETER_TYPES)}.")
        if name in given:
            values = given[name]
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise _bad_parameters(f'Parameter "{name}" must be a list of strings.')
        elif "default" in spec:
            values = _default_to_wire(spec["default"], ptype)
        else:
            missing.append(name)
            continue
        native[name] = _coerce(name, ptype, values)
        _check_constraints(name, spec, ptype, values)
        wire[name] = list(values)
    if missing:
        raise _bad_parameters(f"Parameters {missing} are required by the document but were not provided.")
    return wire, native


def _iam_enforced() -> bool:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def _step_credentials(caller: _Caller, role_arn: str, execution_id: str) -> tuple[str, str, str | None]:
    """(access key, secret, session token) the steps sign with: the assumed role's, else the caller's."""
    from moto.utilities.utils import get_partition

    partition = get_partition(caller.region)
    if role_arn:
        from moto.iam.models import iam_backends

        try:
            iam_backends[caller.account_id][partition].get_role_by_arn(role_arn)
        except Exception as exc:
            if _iam_enforced():  # as AWS: the execution cannot assume a role that does not exist
                raise _bad_parameters(f"AutomationAssumeRole {role_arn} does not exist ({exc}).") from exc
            role_arn = ""  # no IAM enforcement (the default sandbox): run as the caller, as before
    if role_arn:
        from moto.sts.models import sts_backends

        assumed = sts_backends[caller.account_id][partition].assume_role(
            region_name=caller.region, role_session_name=f"automation-{execution_id[:8]}", role_arn=role_arn,
            policy="", duration=3600, external_id="")
        return assumed.access_key_id, assumed.secret_access_key, assumed.session_token
    try:
        from moto.iam.models import iam_backends

        key = iam_backends[caller.account_id][partition].access_keys.get(caller.access_key)
    except Exception:  # moto internals moved: the emulator's default secret
        key = None
    return caller.access_key, (key.secret_access_key if key is not None else "testing"), None


def start_automation_execution(caller: _Caller, request: dict[str, Any]) -> dict[str, Any]:
    name = str(_require(request, "DocumentName"))
    version = request.get("DocumentVersion")
    mode = str(request.get("Mode") or "Auto")
    if mode not in {"Auto", "Interactive"}:
        raise AutomationError("ValidationException", f"Mode {mode!r} is not one of Auto, Interactive.")
    if mode == "Interactive":
        raise _bad_parameters("The sandbox executor runs Mode=Auto only (Interactive mode needs "
                              "SendAutomationSignal, which it does not implement).")
    unsupported = [k for k in ("Targets", "TargetMaps", "TargetParameterName", "TargetLocations",
                               "TargetLocationsURL", "AlarmConfiguration") if request.get(k)]
    if unsupported:
        raise _bad_parameters(f"The sandbox executor does not support {', '.join(unsupported)} "
                              f"(rate control, multi-account/Region and alarms are not emulated).")
    given = request.get("Parameters") or {}
    tags = list(request.get("Tags") or [])
    token = request.get("ClientToken")
    fingerprint = json.dumps({"DocumentName": name, "DocumentVersion": version, "Parameters": given,
                              "Mode": mode, "Tags": tags}, sort_keys=True)
    with _lock:
        if token:
            seen = _tokens.get((caller.account_id, caller.region, str(token)))
            if seen is not None:
                if seen[0] != fingerprint:
                    raise AutomationError(
                        "IdempotentParameterMismatch",
                        "Error and request parameters are not the same as the original request for "
                        f"ClientToken {token}.")
                return {"AutomationExecutionId": seen[1]}
        short, resolved_version, content = _load_document(caller, name, version)
        wire, native = validate_parameters(content.get("parameters"), given)
        execution = _Execution(
            execution_id=str(uuid.uuid4()), account_id=caller.account_id, region=caller.region,
            endpoint=caller.endpoint, access_key=caller.access_key,
            account_header=caller.account_header, document_name=short,
            document_version=resolved_version, document=content, parameters=wire, values=native,
            mode=mode, tags=tags)
        execution.access_key, execution.secret_key, execution.session_token = _step_credentials(
            caller, str(native.get("AutomationAssumeRole") or ""), execution.execution_id)
        _executions[execution.execution_id] = execution
        if token:
            _tokens[(caller.account_id, caller.region, str(token))] = (fingerprint,
                                                                        execution.execution_id)
    threading.Thread(target=_Runner(execution).run, name=f"ssm-automation-{execution.execution_id[:8]}",
                     daemon=True).start()
    return {"AutomationExecutionId": execution.execution_id}


# --------------------------------------------------------------------------------------
# Get / Describe / Stop
# --------------------------------------------------------------------------------------


def _find(caller: _Caller, request: dict[str, Any]) -> _Execution:
    execution_id = str(_require(request, "AutomationExecutionId"))
    execution = _executions.get(execution_id)
    if execution is None or (execution.account_id, execution.region) != (caller.account_id,
                                                                         caller.region):
        raise AutomationError("AutomationExecutionNotFoundException",
                              f"Automation execution {execution_id} not found.")
    return execution


def get_automation_execution(caller: _Caller, request: dict[str, Any]) -> dict[str, Any]:
    with _lock:
        return {"AutomationExecution": _find(caller, request).to_json()}


def _page(items: list[Any], request: dict[str, Any], limit: int = 50) -> tuple[list[Any], str | None]:
    token = request.get("NextToken")
    try:
        offset = int(token) if token else 0
    except ValueError:
        raise AutomationError("InvalidNextToken", "The specified token isn't valid.") from None
    if offset < 0 or offset > len(items):
        raise AutomationError("InvalidNextToken", "The specified token isn't valid.")
    size = int(request.get("MaxResults") or limit)
    if not 1 <= size <= limit:
        raise AutomationError("ValidationException", f"MaxResults must be between 1 and {limit}.")
    page = items[offset:offset + size]
    return page, (str(offset + size) if offset + size < len(items) else None)


def _filter_time(values: list[str]) -> float:
    try:
        return _parse_time(values[0]).timestamp()
    except (ValueError, IndexError):
        raise AutomationError("InvalidFilterValue", f"{values} is not a valid timestamp.") from None


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def describe_automation_executions(caller: _Caller, request: dict[str, Any]) -> dict[str, Any]:
    with _lock:
        items = [e for e in _executions.values()
                 if (e.account_id, e.region) == (caller.account_id, caller.region)]
        for flt in request.get("Filters") or []:
            key, values = flt.get("Key"), [str(v) for v in flt.get("Values") or []]
            if not values:
                raise AutomationError("InvalidFilterValue", f"Filter {key} needs at least one value.")
            if key == "DocumentNamePrefix":
                items = [e for e in items if any(e.document_name.startswith(v) for v in values)]
            elif key == "ExecutionStatus":
                items = [e for e in items if e.status in values]
            elif key == "ExecutionId":
                items = [e for e in items if e.execution_id in values]
            elif key == "CurrentAction":
                items = [e for e in items if e.current_action in values]
            elif key == "StartTimeBefore":
                items = [e for e in items if e.start <= _filter_time(values)]
            elif key == "StartTimeAfter":
                items = [e for e in items if e.start >= _filter_time(values)]
            elif key == "TagKey":
                items = [e for e in items if any(t.get("Key") in values for t in e.tags)]
            elif key == "AutomationType":
                items = [e for e in items if "Local" in values]
            else:
                raise AutomationError("InvalidFilterKey",
                                      f"Filter key {key!r} is not supported by the sandbox executor.")
        items.sort(key=lambda e: e.start, reverse=True)
        page, token = _page(items, request)
        answer: dict[str, Any] = {"AutomationExecutionMetadataList": [e.metadata() for e in page]}
        if token:
            answer["NextToken"] = token
        return answer


def describe_automation_step_executions(caller: _Caller, request: dict[str, Any]) -> dict[str, Any]:
    with _lock:
        steps = list(_find(caller, request).steps)
        for flt in request.get("Filters") or []:
            key, values = flt.get("Key"), [str(v) for v in flt.get("Values") or []]
            if not values:
                raise AutomationError("InvalidFilterValue", f"Filter {key} needs at least one value.")
            if key == "StepName":
                steps = [s for s in steps if s.name in values]
            elif key == "StepExecutionStatus":
                steps = [s for s in steps if s.status in values]
            elif key == "StepExecutionId":
                steps = [s for s in steps if s.step_execution_id in values]
            elif key == "Action":
                steps = [s for s in steps if s.action in values]
            elif key == "StartTimeBefore":
                steps = [s for s in steps if s.start is not None and s.start <= _filter_time(values)]
            elif key == "StartTimeAfter":
                steps = [s for s in steps if s.start is not None and s.start >= _filter_time(values)]
            else:
                raise AutomationError("InvalidFilterKey",
                                      f"Filter key {key!r} is not supported by the sandbox executor.")
        if request.get("ReverseOrder"):
            steps.reverse()
        page, token = _page(steps, request)
        answer: dict[str, Any] = {"StepExecutions": [s.to_json() for s in page]}
        if token:
            answer["NextToken"] = token
        return answer


def stop_automation_execution(caller: _Caller, request: dict[str, Any]) -> dict[str, Any]:
    stop_type = str(request.get("Type") or "Cancel")
    if stop_type not in {"Cancel", "Complete"}:
        raise AutomationError("ValidationException", f"Type {stop_type!r} is not one of Cancel, Complete.")
    with _lock:
        execution = _find(caller, request)
        if execution.status in TERMINAL:
            raise AutomationError(
                "InvalidAutomationStatusUpdateException",
                f"Automation execution {execution.execution_id} is {execution.status} and cannot be "
                f"stopped.")
        execution.status = "Cancelling"
        execution.cancel.set()
    return {}


# --------------------------------------------------------------------------------------
# Templating and selectors
# --------------------------------------------------------------------------------------

_REFERENCE = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


def _text(value: Any) -> str:
    """A value as the string Automation compares / records (booleans lower-case, JSON for maps)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    if value is None:
        return ""
    return str(value)


class _Templates:
    def __init__(self, execution: _Execution) -> None:
        self.execution = execution

    def lookup(self, ref: str) -> Any:
        ex = self.execution
        now = datetime.now(UTC)
        specials = {
            "global:REGION": ex.region,
            "global:ACCOUNT_ID": ex.account_id,
            "global:AWS_PARTITION": "aws",
            "global:AWS_URL_SUFFIX": "amazonaws.com",
            "global:DATE": now.strftime("%Y-%m-%d"),
            "global:DATE_TIME": now.strftime("%Y-%m-%d_%H.%M.%S"),
            "automation:EXECUTION_ID": ex.execution_id,
        }
        if ref in specials:
            return specials[ref]
        if ref in ex.values:
            return ex.values[ref]
        step, dot, output = ref.partition(".")
        if dot:
            with _lock:
                outputs = ex.step_values.get(step)
            if outputs is not None and output in outputs:
                return outputs[output]
            if outputs is None:
                raise _StepFailed(f"{{{{ {ref} }}}} refers to step {step}, which has not run "
                                  f"successfully in this execution.", "InputValidation",
                                  "Verification", retryable=False)
            raise _StepFailed(f"{{{{ {ref} }}}}: step {step} has no output {output!r} "
                              f"(outputs: {sorted(outputs)}).", "InputValidation", "Verification",
                              retryable=False)
        raise _StepFailed(f"{{{{ {ref} }}}} is neither a document parameter nor a supported "
                          f"variable.", "InputValidation", "Verification", retryable=False)

    def render(self, value: Any) -> Any:
        if isinstance(value, str):
            whole = _REFERENCE.fullmatch(value.strip())
            if whole:
                return self.lookup(whole.group(1).strip())
            return _REFERENCE.sub(lambda m: _text(self.lookup(m.group(1).strip())), value)
        if isinstance(value, list):
            return [self.render(v) for v in value]
        if isinstance(value, dict):
            return {k: self.render(v) for k, v in value.items()}
        return value


_PATH_TOKEN = re.compile(r"\.\.([A-Za-z0-9_\-]+)|\.([A-Za-z0-9_\-]+)|\[(\d+|-\d+|\*)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]|\.(\*)")


def select(document: Any, path: str) -> tuple[bool, Any]:
    """JSONPath subset: ``$``, ``.name``, ``['name']``, ``[n]``, ``[*]`` / ``.*`` and ``..name``
    (recursive descent). Returns (found, value); a wildcard or descent makes the value the list of
    all matches."""
    path = path.strip()
    if not path.startswith("$"):
        raise ValueError(f"selector {path!r} must start with '$'")
    tokens: list[str | int | tuple[str]] = []  # a 1-tuple is a recursive-descent key
    pos = 1
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if match is None:
            raise ValueError(f"selector {path!r}: unsupported syntax at {path[pos:]!r} (the sandbox "
                             f"supports $.a.b[0].c, ['key'], [*] and ..key)")
        descend, name, index, quoted, dquoted, star = match.groups()
        if descend is not None:
            tokens.append((descend,))
        elif name is not None:
            tokens.append(name)
        elif index is not None:
            tokens.append("*" if index == "*" else int(index))
        elif star is not None:
            tokens.append("*")
        else:
            tokens.append(quoted if quoted is not None else dquoted)
        pos = match.end()
    values = [document]
    wildcard = False
    for token in tokens:
        found: list[Any] = []
        for value in values:
            if isinstance(token, tuple):
                wildcard = True
                found.extend(_descendants(value, token[0]))
            elif token == "*":
                wildcard = True
                if isinstance(value, list):
                    found.extend(value)
                elif isinstance(value, dict):
                    found.extend(value.values())
            elif isinstance(token, int):
                if isinstance(value, list) and -len(value) <= token < len(value):
                    found.append(value[token])
            elif isinstance(value, dict) and token in value:
                found.append(value[token])
        values = found
    if wildcard:
        return True, values
    return (True, values[0]) if values else (False, None)


def _descendants(value: Any, key: str) -> list[Any]:
    found: list[Any] = []
    if isinstance(value, dict):
        if key in value:
            found.append(value[key])
        for child in value.values():
            found.extend(_descendants(child, key))
    elif isinstance(value, list):
        for child in value:
            found.extend(_descendants(child, key))
    return found


def _convert_output(step: str, name: str, otype: str, value: Any) -> tuple[Any, list[str]]:
    """(native value, wire list of strings) for an output of ``otype``."""
    def fail(why: str) -> _StepFailed:
        return _StepFailed(f"Output {name} of step {step}: {why}", "PostVerification", "Verification",
                           retryable=False)

    if otype == "String":
        if isinstance(value, dict | list):
            raise fail(f"selector returned {type(value).__name__} {_text(value)[:200]}, not a String")
        return _text(value), [_text(value)]
    if otype == "Integer":
        if isinstance(value, bool):
            raise fail(f"selector returned boolean {value}, not an Integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise fail(f"selector returned {_text(value)[:200]!r}, not an Integer") from None
        return number, [str(number)]
    if otype == "Boolean":
        if isinstance(value, bool):
            return value, [_text(value)]
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true", [value.lower()]
        raise fail(f"selector returned {_text(value)[:200]!r}, not a Boolean")
    if otype == "StringList":
        if not isinstance(value, list) or any(isinstance(v, dict | list) for v in value):
            raise fail(f"selector returned {_text(value)[:200]!r}, not a StringList")
        texts = [_text(v) for v in value]
        return texts, texts
    if otype == "MapList":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise fail(f"selector returned {_text(value)[:200]!r}, not a MapList")
        return value, [json.dumps(v, default=str) for v in value]
    if otype == "StringMap":
        if not isinstance(value, dict):
            raise fail(f"selector returned {_text(value)[:200]!r}, not a StringMap")
        return value, [json.dumps(value, default=str)]
    raise fail(f"Type {otype!r} is not one of String, Integer, Boolean, StringList, MapList, StringMap")


def _all_desired(values: list[Any], desired: list[str]) -> bool:
    """Every selected value is one of DesiredValues (booleans match case-insensitively, so both
    AWS runbook spellings 'True' and 'true' work); an empty selection never matches."""
    lowered = {d.lower() for d in desired}
    return bool(values) and all(
        (_text(v) in lowered) if isinstance(v, bool) else (_text(v) in desired) for v in values)


def _moto_implements(service: str, api: str) -> bool | None:
    """Whether moto's response class for ``service`` has a handler for ``api`` (None: unknown)."""
    import importlib
    import inspect

    from botocore import xform_name

    try:
        from moto.core.responses import BaseResponse

        module = importlib.import_module(f"moto.{service.replace('-', '')}.responses")
    except ImportError:
        return None
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, BaseResponse) and c.__module__ == module.__name__]
    if not classes:
        return None
    return any(hasattr(c, xform_name(api)) for c in classes)


def _jsonable(value: Any) -> Any:
    """A boto3 response as the API's JSON (timestamps ISO 8601, bytes as text)."""
    def default(obj: Any) -> Any:
        if isinstance(obj, datetime | date):
            return obj.isoformat()
        if isinstance(obj, bytes | bytearray):
            return obj.decode(errors="replace")
        return str(obj)

    return json.loads(json.dumps(value, default=default))


_DURATION = re.compile(r"P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?"
                       r"(?:(\d+(?:\.\d+)?)S)?)?")


def parse_duration(text: str) -> float:
    """ISO 8601 duration (``PT5S``, ``PT1H30M``, ``P1D``) in seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not an ISO 8601 duration like PT5M")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


# --------------------------------------------------------------------------------------
# aws:branch conditions
# --------------------------------------------------------------------------------------

_STRING_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda a, b: a == b,
    "EqualsIgnoreCase": lambda a, b: a.lower() == b.lower(),
    "StartsWith": lambda a, b: a.startswith(b),
    "EndsWith": lambda a, b: a.endswith(b),
}
_NUMERIC_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "NumericEquals": lambda a, b: a == b,
    "NumericGreater": lambda a, b: a > b,
    "NumericGreaterOrEquals": lambda a, b: a >= b,
    "NumericLesser": lambda a, b: a < b,
    "NumericLesserOrEquals": lambda a, b: a <= b,
}
BRANCH_OPERATORS = (*_STRING_OPERATORS, *_NUMERIC_OPERATORS, "BooleanEquals", "Contains")


def evaluate_condition(condition: dict[str, Any], render: Callable[[Any], Any]) -> bool:
    """One ``aws:branch`` choice (without its NextStep): Variable + operator, or And / Or / Not."""
    if "And" in condition:
        return all(evaluate_condition(c, render) for c in condition["And"])
    if "Or" in condition:
        return any(evaluate_condition(c, render) for c in condition["Or"])
    if "Not" in condition:
        inner = condition["Not"]
        return not evaluate_condition(inner if isinstance(inner, dict) else inner[0], render)
    if "Variable" not in condition:
        raise ValueError(f"choice {condition} has no Variable (or And / Or / Not)")
    variable = render(condition["Variable"])
    operators = [k for k in condition if k in BRANCH_OPERATORS]
    if len(operators) != 1:
        raise ValueError(f"choice on {condition['Variable']} needs exactly one operator of "
                         f"{', '.join(BRANCH_OPERATORS)} (found {sorted(k for k in condition if k not in ('Variable', 'NextStep'))})")
    op = operators[0]
    expected = render(condition[op])
    if op in _STRING_OPERATORS:
        return _STRING_OPERATORS[op](_text(variable), _text(expected))
    if op in _NUMERIC_OPERATORS:
        try:
            return _NUMERIC_OPERATORS[op](float(_text(variable)), float(_text(expected)))
        except ValueError:
            raise ValueError(f"{op}: {_text(variable)!r} or {_text(expected)!r} is not a number") from None
    if op == "BooleanEquals":
        return _text(variable).lower() == _text(expected).lower()
    # Contains: membership for lists, substring for strings
    if isinstance(variable, list):
        return _text(expected) in [_text(v) for v in variable]
    return _text(expected) in _text(variable)


# --------------------------------------------------------------------------------------
# The runner (one background thread per execution)
# --------------------------------------------------------------------------------------


@dataclass
class _StepResult:
    values: dict[str, Any] = field(default_factory=dict)
    wire: dict[str, list[str]] = field(default_factory=dict)
    next_step: str | None = None
    warning: str | None = None
    valid_next_steps: list[str] = field(default_factory=list)


def _document_problems(document: dict[str, Any]) -> list[str]:
    problems = []
    if str(document.get("schemaVersion")) != "0.3":
        problems.append(f"schemaVersion is {document.get('schemaVersion')!r}, Automation needs '0.3'")
    steps = document.get("mainSteps")
    if not isinstance(steps, list) or not steps:
        return [*problems, "mainSteps is missing or empty"]
    names = [str(s.get("name") or "") for s in steps if isinstance(s, dict)]
    if len(names) != len(steps) or not all(names):
        problems.append("every step needs a name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"duplicate step names {duplicates}")
    for step in steps:
        if not isinstance(step, dict):
            continue
        if not step.get("action"):
            problems.append(f"step {step.get('name')} has no action")
        targets = []
        if step.get("nextStep"):
            targets.append(str(step["nextStep"]))
        on_failure = str(step.get("onFailure", "Abort"))
        if on_failure.startswith("step:"):
            targets.append(on_failure[5:])
        elif on_failure not in {"Abort", "Continue"}:
            problems.append(f"step {step.get('name')}: onFailure {on_failure!r} is not Abort, "
                            f"Continue or step:<name>")
        if step.get("action") == "aws:branch":
            inputs = step.get("inputs") or {}
            targets += [str(c.get("NextStep")) for c in inputs.get("Choices") or [] if isinstance(c, dict)]
            if inputs.get("Default"):
                targets.append(str(inputs["Default"]))
        for target in targets:
            if target not in names:
                problems.append(f"step {step.get('name')} refers to unknown step {target!r}")
    return problems


class _Runner:
    def __init__(self, execution: _Execution) -> None:
        self.ex = execution
        self.templates = _Templates(execution)
        self._session: Any = None
        self._clients: dict[str, Any] = {}

    # -- AWS access ------------------------------------------------------------------

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            if self._session is None:
                self._session = boto3.session.Session(
                    aws_access_key_id=self.ex.access_key, aws_secret_access_key=self.ex.secret_key,
                    aws_session_token=self.ex.session_token, region_name=self.ex.region)
            try:
                client = self._session.client(
                    service, endpoint_url=self.ex.endpoint,
                    config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                                  read_timeout=60))
            except Exception as exc:
                raise _StepFailed(f"unknown AWS service {service!r}: {exc}", "InputValidation",
                                  "Verification", retryable=False) from exc
            if self.ex.account_header:
                account = self.ex.account_header

                def add_header(request: Any, **_: Any) -> None:
                    request.headers["x-moto-account-id"] = account

                client.meta.events.register("before-sign", add_header)
            self._clients[service] = client
        return self._clients[service]

    def call(self, service: str, api: str, params: dict[str, Any]) -> Any:
        from botocore import xform_name
        from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
        from botocore.parsers import ResponseParserError

        client = self.client(str(service).lower())
        operation = xform_name(str(api))
        if str(api) not in client.meta.service_model.operation_names:
            raise _StepFailed(f"{service} has no API {api!r}", "InputValidation", "Verification",
                              retryable=False)
        try:
            response = getattr(client, operation)(**params)
        except ParamValidationError as exc:
            raise _StepFailed(f"{service}.{api}: invalid parameters: {exc}", "InputValidation",
                              "Verification", retryable=False) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            text = str(error.get("Message", ""))
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 500:
                self._server_error(client, service, api, exc)
            kind = ("Permission" if "AccessDenied" in code or "Unauthorized" in code
                    else "Throttling" if "Throttl" in code else "Action")
            raise _StepFailed(f"{service}.{api} failed: An error occurred ({code}): {text[:500]}",
                              "Invocation", kind) from exc
        except ResponseParserError as exc:  # an HTML 500 page where XML was expected
            self._server_error(client, service, api, exc)
        except BotoCoreError as exc:
            raise _StepFailed(f"{service}.{api} failed: {exc}", "Invocation", "Action") from exc
        response.pop("ResponseMetadata", None)
        return _jsonable(response)

    @staticmethod
    def _server_error(client: Any, service: str, api: str, exc: Exception) -> NoReturn:
        """The emulator answered HTTP 500: moto's bare error page, usually for an API it lacks."""
        # For RPC protocols moto's handler is the API's snake_case name; REST ones are routed.
        rpc = client.meta.service_model.protocol in {"json", "query", "ec2"}
        if rpc and _moto_implements(str(service).lower(), str(api)) is False:
            raise _StepFailed(f"the emulator (moto) does not implement {service}.{api}, so this step "
                              f"cannot be rehearsed in the sandbox", "Invocation", "Internal",
                              retryable=False, fatal=True) from exc
        raise _StepFailed(f"{service}.{api} failed: the emulator answered HTTP 500 (see the sandbox "
                          f"server's log)", "Invocation", "Internal", retryable=False, fatal=True) from exc

    def wait(self, seconds: float) -> None:
        if self.ex.cancel.wait(max(0.0, seconds)):
            raise _Cancelled()

    # -- flow ------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # never leave an execution InProgress because of a sandbox bug
            message = f"Sandbox automation executor internal error: {type(exc).__name__}: {str(exc)[:500]}"
            with _lock:
                for record in self.ex.steps:
                    if record.status == "InProgress":
                        record.status, record.end, record.failure_message = "Failed", _now(), message
                        record.failure_details = {"FailureStage": "Invocation", "FailureType": "Internal",
                                                  "Details": {"ExceptionMessage": [message]}}
            self.finish("Failed", message)

    def finish(self, status: str, message: str | None = None) -> None:
        with _lock:
            self.ex.status = status
            self.ex.end = _now()
            if message is not None:
                self.ex.failure_message = message
            self.ex.current_step = self.ex.current_action = None

    def _run(self) -> None:
        ex = self.ex
        problems = _document_problems(ex.document)
        if problems:
            self.finish("Failed", f"Document {ex.document_name} version {ex.document_version} is not a "
                                  f"valid Automation runbook: {'; '.join(problems)}.")
            return
        steps: list[dict[str, Any]] = ex.document["mainSteps"]
        index = {str(s["name"]): i for i, s in enumerate(steps)}
        with _lock:
            if ex.cancel.is_set():
                self.finish("Cancelled")
                return
            ex.status = "InProgress"
        position: int | None = 0
        critical_failure: str | None = None
        executed = 0
        while position is not None:
            if ex.cancel.is_set():
                self.finish("Cancelled")
                return
            executed += 1
            if executed > MAX_STEP_EXECUTIONS:
                self.finish("Failed", f"Execution stopped after {MAX_STEP_EXECUTIONS} step executions "
                                      f"(a nextStep / onFailure loop?).")
                return
            spec = steps[position]
            record = _StepRecord(name=str(spec["name"]), action=str(spec["action"]), spec=spec)
            with _lock:
                record.status, record.start = "InProgress", _now()
                ex.steps.append(record)
                ex.current_step, ex.current_action = record.name, record.action
            try:
                result = self._attempts(spec, record)
            except _Cancelled:
                with _lock:
                    record.status, record.end = "Cancelled", _now()
                self.finish("Cancelled")
                return
            except _StepFailed as failure:
                with _lock:
                    record.status, record.end = failure.status, _now()
                    record.failure_message = failure.message
                    record.failure_details = {"FailureStage": failure.stage, "FailureType": failure.kind,
                                              "Details": {"ExceptionMessage": [failure.message]}}
                on_failure = "Abort" if failure.fatal else str(spec.get("onFailure", "Abort"))
                if on_failure == "Abort":
                    self.finish("TimedOut" if failure.status == "TimedOut" else "Failed", failure.message)
                    return
                if _is_critical(spec) and critical_failure is None:
                    critical_failure = failure.message
                position = (index[on_failure[5:]] if on_failure.startswith("step:")
                            else self._successor(spec, position, None, index, len(steps)))
                continue
            with _lock:
                record.status, record.end = "Success", _now()
                record.outputs = result.wire
                record.warning = result.warning
                record.next_step = result.next_step
                record.valid_next_steps = result.valid_next_steps
                ex.step_values[record.name] = result.values
                ex.step_wire[record.name] = result.wire
            position = self._successor(spec, position, result.next_step, index, len(steps))
        if critical_failure is not None:
            self.finish("Failed", critical_failure)
        else:
            self.finish("Success")

    @staticmethod
    def _successor(spec: dict[str, Any], position: int, chosen: str | None, index: dict[str, int],
                   total: int) -> int | None:
        if chosen:
            return index[chosen]
        if _truthy(spec.get("isEnd", False)):
            return None
        if spec.get("nextStep"):
            return index[str(spec["nextStep"])]
        return position + 1 if position + 1 < total else None

    def _attempts(self, spec: dict[str, Any], record: _StepRecord) -> _StepResult:
        action = record.action
        handler = _HANDLERS.get(action)
        if handler is None:
            raise _StepFailed(
                f"Step {record.name} uses action '{action}', which the sandbox executor does not support "
                f"(supported: {', '.join(SUPPORTED_ACTIONS)})", "PreVerification", "Verification",
                retryable=False, fatal=True)
        attempts = max(1, int(spec.get("maxAttempts", 1)))
        timeout = float(spec.get("timeoutSeconds") or DEFAULT_STEP_TIMEOUT_SECONDS)
        for attempt in range(1, attempts + 1):
            try:
                raw = spec.get("inputs") or {}
                # aws:branch renders each choice's Variable lazily (a later choice may refer to a
                # step that has not run), so its inputs are recorded as written.
                inputs = raw if action == "aws:branch" else self.templates.render(raw)
                if not isinstance(inputs, dict):
                    raise _StepFailed("inputs must be a map", "InputValidation", "Verification",
                                      retryable=False)
                with _lock:
                    record.inputs = {k: json.dumps(v, default=str) for k, v in inputs.items()}
                return handler(self, record.name, inputs, spec, time.monotonic() + timeout)
            except _StepFailed as failure:
                prefix = f"Step {record.name} ({action})"
                if not failure.message.startswith(prefix):
                    failure.message = f"{prefix} failed: {failure.message}"
                if not failure.retryable or attempt == attempts:
                    if attempts > 1:
                        failure.message += f" (after {attempt} of {attempts} attempts)"
                    raise
                self.wait(POLL_SECONDS)
        raise AssertionError("unreachable")

    # -- actions ---------------------------------------------------------------------

    @staticmethod
    def _need(inputs: dict[str, Any], *names: str) -> None:
        missing = [n for n in names if inputs.get(n) in (None, "", [])]
        if missing:
            raise _StepFailed(f"missing required input(s) {missing}", "InputValidation", "Verification",
                              retryable=False)

    @staticmethod
    def _api_params(inputs: dict[str, Any], *reserved: str) -> dict[str, Any]:
        return {k: v for k, v in inputs.items() if k not in reserved}

    def execute_aws_api(self, step: str, inputs: dict[str, Any], spec: dict[str, Any],
                        deadline: float) -> _StepResult:
        self._need(inputs, "Service", "Api")
        response = self.call(inputs["Service"], inputs["Api"], self._api_params(inputs, "Service", "Api"))
        result = _StepResult()
        missing = []
        for output in spec.get("outputs") or []:
            name, selector = str(output.get("Name")), str(output.get("Selector", ""))
            try:
                found, value = select(response, selector)
            except ValueError as exc:
                raise _StepFailed(str(exc), "InputValidation", "Verification", retryable=False) from exc
            if not found:
                missing.append(f"{name} ({selector})")
                continue
            result.values[name], result.wire[name] = _convert_output(
                step, name, str(output.get("Type", "String")), value)
        if missing:
            result.warning = f"Selector matched nothing in the {inputs['Api']} response for output(s) {', '.join(missing)}."
        return result

    def _property(self, inputs: dict[str, Any]) -> tuple[str, list[Any]]:
        self._need(inputs, "Service", "Api", "PropertySelector", "DesiredValues")
        response = self.call(inputs["Service"], inputs["Api"],
                             self._api_params(inputs, "Service", "Api", "PropertySelector", "DesiredValues"))
        try:
            found, value = select(response, str(inputs["PropertySelector"]))
        except ValueError as exc:
            raise _StepFailed(str(exc), "InputValidation", "Verification", retryable=False) from exc
        if not found or value == []:
            return "<no match>", []
        values = value if isinstance(value, list) else [value]
        return ", ".join(_text(v) for v in values), values

    @staticmethod
    def _desired(inputs: dict[str, Any]) -> list[str]:
        desired = inputs["DesiredValues"]
        return [_text(v) for v in (desired if isinstance(desired, list) else [desired])]

    def wait_for_property(self, step: str, inputs: dict[str, Any], spec: dict[str, Any],
                          deadline: float) -> _StepResult:
        desired = self._desired(inputs) if inputs.get("DesiredValues") else []
        while True:
            shown, values = self._property(inputs)
            if _all_desired(values, desired):
                return _StepResult()
            if time.monotonic() >= deadline:
                raise _StepFailed(
                    f"timed out after {spec.get('timeoutSeconds', DEFAULT_STEP_TIMEOUT_SECONDS)} s waiting "
                    f"for {inputs['PropertySelector']} of {inputs['Service']}.{inputs['Api']} to be one of "
                    f"{desired}; last value: {shown}", "Invocation", "Action", status="TimedOut")
            self.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def assert_property(self, step: str, inputs: dict[str, Any], spec: dict[str, Any],
                        deadline: float) -> _StepResult:
        desired = self._desired(inputs) if inputs.get("DesiredValues") else []
        shown, values = self._property(inputs)
        if _all_desired(values, desired):
            return _StepResult()
        raise _StepFailed(
            f"{inputs['PropertySelector']} of {inputs['Service']}.{inputs['Api']} is {shown}, expected "
            f"one of {desired}", "PostVerification", "Verification")

    def change_instance_state(self, step: str, inputs: dict[str, Any], spec: dict[str, Any],
                              deadline: float) -> _StepResult:
        self._need(inputs, "InstanceIds", "DesiredState")
        ids = inputs["InstanceIds"]
        ids = [str(i) for i in (ids if isinstance(ids, list) else [ids])]
        desired = str(inputs["DesiredState"])
        calls = {"running": "StartInstances", "stopped": "StopInstances", "terminated": "TerminateInstances"}
        if desired not in calls:
            raise _StepFailed(f"DesiredState {desired!r} is not one of running, stopped, terminated",
                              "InputValidation", "Verification", retryable=False)
        if not _truthy(inputs.get("CheckStateOnly", False)):
            params: dict[str, Any] = {"InstanceIds": ids}
            if desired == "stopped" and _truthy(inputs.get("Force", False)):
                params["Force"] = True
            self.call("ec2", calls[desired], params)
        while True:
            described = self.call("ec2", "DescribeInstances", {"InstanceIds": ids})
            states = {i["InstanceId"]: i["State"]["Name"]
                      for r in described.get("Reservations", []) for i in r.get("Instances", [])}
            if all(states.get(i) == desired for i in ids):
                return _StepResult()
            if time.monotonic() >= deadline:
                raise _StepFailed(f"timed out waiting for {ids} to be {desired}; states: {states}",
                                  "Invocation", "Action", status="TimedOut")
            self.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def branch(self, step: str, inputs: dict[str, Any], spec: dict[str, Any],
               deadline: float) -> _StepResult:
        # Inputs were rendered already; choices' Variables may reference outputs of steps that have
        # not run, so the raw (unrendered) choices are evaluated lazily, in order.
        raw = spec.get("inputs") or {}
        choices = raw.get("Choices") or []
        default = raw.get("Default")
        valid = [str(c.get("NextStep")) for c in choices if isinstance(c, dict)]
        valid += [str(default)] if default else []
        for choice in choices:
            try:
                matched = evaluate_condition({k: v for k, v in choice.items() if k != "NextStep"},
                                             self.templates.render)
            except ValueError as exc:
                raise _StepFailed(str(exc), "InputValidation", "Verification", retryable=False) from exc
            if matched:
                return _StepResult(next_step=str(choice["NextStep"]), valid_next_steps=valid)
        if default:
            return _StepResult(next_step=str(default), valid_next_steps=valid)
        raise _StepFailed(f"no choice matched and there is no Default (choices lead to {valid})",
                          "Invocation", "Action", retryable=False)

    def sleep(self, step: str, inputs: dict[str, Any], spec: dict[str, Any],
              deadline: float) -> _StepResult:
        if inputs.get("Duration"):
            try:
                seconds = parse_duration(str(inputs["Duration"]))
            except ValueError as exc:
                raise _StepFailed(str(exc), "InputValidation", "Verification", retryable=False) from exc
        elif inputs.get("Timestamp"):
            try:
                seconds = (_parse_time(str(inputs["Timestamp"])) - datetime.now(UTC)).total_seconds()
            except ValueError as exc:
                raise _StepFailed(f"Timestamp {inputs['Timestamp']!r} is not ISO 8601", "InputValidation",
                                  "Verification", retryable=False) from exc
        else:
            raise _StepFailed("aws:sleep needs Duration or Timestamp", "InputValidation", "Verification",
                              retryable=False)
        seconds = max(0.0, seconds)
        real = min(seconds, SLEEP_CAP_SECONDS)
        self.wait(real)
        warning = None
        if real < seconds:
            warning = (f"Sandbox: slept {real:g} s instead of {seconds:g} s (aws:sleep is capped at "
                       f"{SLEEP_CAP_SECONDS:g} s in the emulator).")
        return _StepResult(warning=warning)

    def run_command(self, step: str, inputs: dict[str, Any], spec: dict[str, Any],
                    deadline: float) -> _StepResult:
        self._need(inputs, "DocumentName")
        params = dict(inputs)
        if not params.get("InstanceIds") and not params.get("Targets"):
            raise _StepFailed("aws:runCommand needs InstanceIds or Targets", "InputValidation",
                              "Verification", retryable=False)
        if isinstance(params.get("InstanceIds"), str):
            params["InstanceIds"] = [params["InstanceIds"]]
        command_params = params.get("Parameters") or {}
        if isinstance(command_params, dict):
            params["Parameters"] = {k: ([_text(x) for x in v] if isinstance(v, list) else [_text(v)])
                                    for k, v in command_params.items()}
        if "TimeoutSeconds" in params:
            params["TimeoutSeconds"] = int(params["TimeoutSeconds"])
        ids = params.get("InstanceIds") or []
        if ids:  # SSM only reaches managed instances that are running (InvalidInstanceId otherwise)
            try:
                described = self.call("ec2", "DescribeInstances", {"InstanceIds": ids})
            except _StepFailed as exc:
                raise _StepFailed(f"ssm.SendCommand failed: An error occurred (InvalidInstanceId): "
                                  f"{exc.message}", "Invocation", "Action") from exc
            states = {i["InstanceId"]: i["State"]["Name"]
                      for r in described.get("Reservations", []) for i in r.get("Instances", [])}
            offline = {i: states.get(i, "not found") for i in ids if states.get(i) != "running"}
            if offline:
                raise _StepFailed(f"ssm.SendCommand failed: An error occurred (InvalidInstanceId): "
                                  f"instances not in a valid state for account: {offline}", "Invocation",
                                  "Action")
        command = self.call("ssm", "SendCommand", params)["Command"]
        command_id = str(command["CommandId"])
        # moto has no ListCommandInvocations: poll ListCommands for the command's status, then read
        # each instance's invocation with GetCommandInvocation.
        while True:
            listed = self.call("ssm", "ListCommands", {"CommandId": command_id})["Commands"]
            status = str(listed[0].get("Status")) if listed else "Pending"
            # moto 5.2.5 adds every instance of the Region to a command sent by InstanceIds (it
            # resolves the empty Targets list as "all"), so the requested ids are what counts.
            targets = [str(i) for i in ids] or (
                [str(i) for i in (listed[0].get("InstanceIds") or [])] if listed else [])
            if status not in {"Pending", "InProgress", "Delayed", "Cancelling"}:
                break
            if time.monotonic() >= deadline:
                raise _StepFailed(f"timed out waiting for command {command_id} (status {status})",
                                  "Invocation", "Action", status="TimedOut")
            self.wait(POLL_SECONDS)
        if not targets:
            raise _StepFailed(f"command {command_id} reached no instances", "Invocation", "Action")
        details = {i: self.call("ssm", "GetCommandInvocation", {"CommandId": command_id, "InstanceId": i})
                   for i in sorted(targets)}
        failed = {i: str(d.get("Status")) for i, d in details.items() if d.get("Status") != "Success"}
        if status != "Success" or failed:
            raise _StepFailed(f"command {command_id} finished with status {status}; invocations not "
                              f"successful: {failed}", "Invocation", "Action")
        detail = details[sorted(targets)[0]]
        output = str(detail.get("StandardOutputContent", ""))[:2500]
        code = str(detail.get("ResponseCode", 0))
        values = {"CommandId": command_id, "Status": "Success", "ResponseCode": code, "Output": output}
        return _StepResult(values=values, wire={k: [v] for k, v in values.items()})


def _execute_script(self: _Runner, step: str, inputs: dict[str, Any], spec: dict[str, Any],
                    deadline: float) -> _StepResult:
    """aws:executeScript (Python runtimes): the handler runs in a child process with boto3 pointed
    at the emulator; its return value is the step's ``Payload``."""
    import os
    import subprocess
    import sys
    import time

    self._need(inputs, "Runtime", "Handler", "Script")
    runtime = str(inputs["Runtime"])
    if not runtime.startswith("python3"):
        raise _StepFailed(f"runtime {runtime!r} is not supported by the sandbox executor (Python 3 only)",
                          "InputValidation", "Verification", retryable=False)
    env = {**os.environ, "AWS_ENDPOINT_URL": self.ex.endpoint, "AWS_ACCESS_KEY_ID": self.ex.access_key,
           "AWS_SECRET_ACCESS_KEY": self.ex.secret_key, "AWS_DEFAULT_REGION": self.ex.region,
           "AWS_REGION": self.ex.region}
    if self.ex.session_token:
        env["AWS_SESSION_TOKEN"] = self.ex.session_token
    job = {"script": str(inputs["Script"]), "handler": str(inputs["Handler"]).split(".")[-1],
           "events": inputs.get("InputPayload") or {}}
    timeout = max(1.0, min(SCRIPT_TIMEOUT_SECONDS, deadline - time.monotonic()))
    try:
        proc = subprocess.run([sys.executable, "-c", _SCRIPT_WRAPPER], input=json.dumps(job, default=str),
                              capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise _StepFailed(f"script did not finish within {timeout:.0f}s", "Invocation", "Action") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise _StepFailed(f"script raised: {last}", "Invocation", "Action")
    payload = json.loads(proc.stdout.rsplit("__AUTOMATION_PAYLOAD__", 1)[-1])
    response = {"Payload": payload}
    result = _StepResult()
    for output in spec.get("outputs") or []:
        name, selector = str(output.get("Name")), str(output.get("Selector", ""))
        found, value = select(response, selector)
        if found:
            result.values[name], result.wire[name] = _convert_output(step, name, str(output.get("Type", "String")),
                                                                     value)
    return result


_Handler = Callable[[_Runner, str, dict[str, Any], dict[str, Any], float], _StepResult]
_HANDLERS: dict[str, _Handler] = {
    "aws:executeAwsApi": _Runner.execute_aws_api,
    "aws:changeInstanceState": _Runner.change_instance_state,
    "aws:waitForAwsResourceProperty": _Runner.wait_for_property,
    "aws:assertAwsResourceProperty": _Runner.assert_property,
    "aws:branch": _Runner.branch,
    "aws:sleep": _Runner.sleep,
    "aws:runCommand": _Runner.run_command,
    "aws:executeScript": _execute_script,
}
assert tuple(_HANDLERS) == SUPPORTED_ACTIONS


def reset() -> None:
    """Forget all executions and client tokens (running executions are cancelled)."""
    with _lock:
        for execution in _executions.values():
            execution.cancel.set()
        _executions.clear()
        _tokens.clear()


__all__ = ["AUTOMATION_ACTIONS", "SUPPORTED_ACTIONS", "AutomationError", "evaluate_condition", "handle",
           "is_automation_request", "parse_duration", "reset", "select", "validate_parameters"]
