"""The runbook catalog: SSM Automation documents under ``include/runbooks/`` with their metadata.

Each runbook is two files. ``<id>.yaml`` is a real SSM Automation document (schemaVersion 0.3),
published as ``MatCarv-<id>``. ``<id>.meta.yaml`` is next to it and says what AIOps needs to know
before running the document: risk, approval policy, approvers, a validation pattern per parameter,
which parameter names the targets, the blast radius, the IAM permissions and the rollback notes.

:func:`load_catalog` validates both files, and their agreement, without calling AWS. Every problem
becomes a :class:`~aiops.core.errors.ConfigError` naming the file and the field (for example
``include/runbooks/x.yaml: mainSteps[2].action: unsupported action 'aws:foo'``). A broken runbook
is left out and the rest still load.

The SSM knowledge is kept in registries: :data:`STEP_ACTIONS` (the step actions, their required
inputs and built-in outputs, and the IAM actions they imply), :data:`BRANCH_OPERATORS` and
:data:`SYSTEM_VARIABLES`. A new runbook needs no Python change.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from aiops.core.errors import ConfigError
from aiops.core.settings import PROJECT_ROOT, get_settings
from aiops.remediation.guards import VALUE_COERCERS

DOCUMENT_PREFIX = "MatCarv-"
DOCUMENT_SUFFIX = ".yaml"
META_SUFFIX = ".meta.yaml"
ASSUME_ROLE_PARAMETER = "AutomationAssumeRole"
ASSUME_ROLE = "{{ AutomationAssumeRole }}"
SSM_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,128}$")
MAX_DOCUMENT_BYTES = 64 * 1024  # SSM's limit on document content

TargetKind = Literal[
    "ec2:instance", "ec2:security-group", "ec2:volume", "autoscaling:group", "rds:db", "s3:bucket", "account",
    "ec2:elastic-ip", "ec2:snapshot",
]
Risk = Literal["low", "medium", "high"]
Approval = Literal["pre-approved", "requires-approval", "requires-two-approvals"]


# --------------------------------------------------------------------------------------------------
# What SSM Automation offers (registries)
# --------------------------------------------------------------------------------------------------

PermissionRule = Callable[[Mapping[str, Any]], tuple[str, ...]]

#: IAM actions an ``aws:executeAwsApi``-style call needs when they differ from ``service:Api``.
API_PERMISSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ec2", "CreateSnapshot"): ("ec2:CreateSnapshot", "ec2:CreateTags"),  # tags on create
    ("ec2", "CreateSnapshots"): ("ec2:CreateSnapshots", "ec2:CreateTags"),
    ("s3", "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "PutPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("sts", "GetCallerIdentity"): (),  # needs no permission
}

_INSTANCE_STATE_PERMISSIONS = {
    "running": "ec2:StartInstances",
    "stopped": "ec2:StopInstances",
    "terminated": "ec2:TerminateInstances",
}


def api_permissions(service: str, api: str) -> tuple[str, ...]:
    """IAM actions one AWS API call needs (``ec2``, ``StopInstances`` -> ``ec2:StopInstances``)."""
    service = service.lower()
    return API_PERMISSIONS.get((service, api), (f"{service}:{api}",))


def _api_call_permissions(inputs: Mapping[str, Any]) -> tuple[str, ...]:
    return api_permissions(str(inputs.get("Service", "")), str(inputs.get("Api", "")))


def _instance_state_permissions(inputs: Mapping[str, Any]) -> tuple[str, ...]:
    state = _INSTANCE_STATE_PERMISSIONS.get(str(inputs.get("DesiredState", "")))
    return ("ec2:DescribeInstances", *((state,) if state else ()))


def needed_permissions(steps: Iterable[tuple[str, Mapping[str, Any]]]) -> set[str]:
    """IAM actions (action, inputs) steps visibly need; ``aws:executeScript`` bodies are not read."""
    needed: set[str] = set()
    for action, inputs in steps:
        spec = STEP_ACTIONS.get(action)
        if spec is not None and spec.permissions is not None:
            needed.update(spec.permissions(inputs))
    return needed


def _fixed(*actions: str) -> PermissionRule:
    return lambda _inputs: actions


@dataclass(frozen=True)
class StepAction:
    """One SSM Automation step action: inputs it requires, outputs it has without declaring them,
    and the IAM actions a step with these inputs needs (``None``: not derivable, e.g. scripts)."""

    required_inputs: tuple[str, ...] = ()
    builtin_outputs: tuple[str, ...] = ()
    permissions: PermissionRule | None = None


_API_INPUTS = ("Service", "Api")
_PROPERTY_INPUTS = ("Service", "Api", "PropertySelector", "DesiredValues")

#: The step actions the catalog accepts. ``aws:loop`` is left out on purpose: its nested steps
#: would escape the reference and flow checks below.
STEP_ACTIONS: dict[str, StepAction] = {
    "aws:approve": StepAction(("Approvers",), ("ApprovalStatus", "ApproverDecisions", "Approvers")),
    "aws:assertAwsResourceProperty": StepAction(_PROPERTY_INPUTS, (), _api_call_permissions),
    "aws:branch": StepAction(("Choices",), (), _fixed()),
    "aws:changeInstanceState": StepAction(("InstanceIds", "DesiredState"), (), _instance_state_permissions),
    "aws:copyImage": StepAction(("SourceImageId", "SourceRegion", "ImageName"), ("ImageId", "ImageState")),
    "aws:createImage": StepAction(("InstanceId", "ImageName"), ("ImageId", "ImageState")),
    "aws:createStack": StepAction(("StackName",), ("StackId", "StackStatus", "StackStatusReason")),
    "aws:createTags": StepAction(("ResourceIds", "Tags")),
    "aws:deleteImage": StepAction(("ImageId",)),
    "aws:deleteStack": StepAction(("StackName",)),
    "aws:executeAutomation": StepAction(("DocumentName",), ("ExecutionId", "Status", "Output")),
    "aws:executeAwsApi": StepAction(_API_INPUTS, (), _api_call_permissions),
    "aws:executeScript": StepAction(("Runtime", "Handler"), ()),
    "aws:executeStateMachine": StepAction(("stateMachineArn",), ("executionArn", "output")),
    "aws:invokeLambdaFunction": StepAction(("FunctionName",), ("StatusCode", "FunctionError", "LogResult", "Payload")),
    "aws:invokeWebhook": StepAction(("IntegrationName",), ("Response", "ResponseCode")),
    "aws:pause": StepAction((), (), _fixed()),
    "aws:runCommand": StepAction(
        ("DocumentName",),
        ("CommandId", "Status", "ResponseCode", "Output"),
        _fixed("ssm:SendCommand", "ssm:ListCommands", "ssm:ListCommandInvocations"),
    ),
    "aws:runInstances": StepAction(("ImageId",), ("InstanceIds",)),
    "aws:sleep": StepAction((), (), _fixed()),
    "aws:updateVariable": StepAction(("Name", "Value"), (), _fixed()),
    "aws:waitForAwsResourceProperty": StepAction(_PROPERTY_INPUTS, (), _api_call_permissions),
}

#: Comparison operators of an ``aws:branch`` choice (besides the ``And``/``Or``/``Not`` combinators).
BRANCH_OPERATORS = frozenset({
    "StringEquals", "EqualsIgnoreCase", "StartsWith", "EndsWith", "Contains",
    "NumericEquals", "NumericGreater", "NumericLesser", "NumericGreaterOrEquals", "NumericLesserOrEquals",
    "BooleanEquals",
})
_BRANCH_COMBINATORS = frozenset({"And", "Or", "Not"})

#: Variables SSM Automation defines itself (``{{ global:REGION }}``).
SYSTEM_VARIABLES = frozenset({
    "automation:EXECUTION_ID",
    "global:ACCOUNT_ID",
    "global:AWS_PARTITION",
    "global:DATE",
    "global:DATE_TIME",
    "global:REGION",
})

_REFERENCE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PARAMETER_REF = re.compile(r"[A-Za-z0-9_]+")
_OUTPUT_REF = re.compile(r"([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)")


# --------------------------------------------------------------------------------------------------
# The document (AWS's format) and the metadata (ours), as pydantic models at the edge
# --------------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DocumentParameter(_Strict):
    type: Literal["String", "StringList", "Integer", "Boolean", "MapList", "StringMap"]
    description: str = ""
    default: Any = None
    allowedPattern: str | None = None
    allowedValues: list[Any] | None = None
    displayType: Literal["textarea", "textfield"] | None = None
    minItems: int | None = Field(None, ge=0)
    maxItems: int | None = Field(None, ge=1)


class StepOutput(_Strict):
    Name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$")]
    Selector: Annotated[str, StringConstraints(pattern=r"^\$")]
    Type: Literal["String", "Integer", "Boolean", "StringList", "StringMap", "MapList"]


class DocumentStep(_Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,127}$")]
    action: str
    description: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: list[StepOutput] = Field(default_factory=list)
    maxAttempts: int | None = Field(None, ge=1)
    timeoutSeconds: int | None = Field(None, ge=1)
    onFailure: str | None = None
    onCancel: str | None = None
    isEnd: bool | None = None
    isCritical: bool | None = None
    nextStep: str | None = None


class AutomationDocument(_Strict):
    """The parts of an SSM Automation document (schemaVersion 0.3) the catalog checks."""

    schemaVersion: Literal["0.3"]
    description: Annotated[str, StringConstraints(min_length=1)]
    assumeRole: str
    parameters: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$")], DocumentParameter]
    mainSteps: list[DocumentStep] = Field(min_length=1)
    outputs: list[str] = Field(default_factory=list)
    files: dict[str, Any] | None = None
    variables: dict[str, Any] | None = None


class ParameterMeta(_Strict):
    description: Annotated[str, StringConstraints(min_length=1)]
    pattern: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="Python regex (re.fullmatch) every value must match; equals the document's "
        "allowedPattern where it has one."
    )
    target: TargetKind | None = Field(None, description="Kind of resource this parameter names.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


class Approvers(_Strict):
    users: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9._-]*$")]] = Field(default_factory=list)
    roles: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_ -]*$")]] = Field(
        default_factory=list
    )

    @property
    def count(self) -> int:
        return len(set(self.users)) + len(set(self.roles))


class ResourceProperty(_Strict):
    """An AWS read whose result shows the fix held (the same shape as an assert step)."""

    service: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$")]
    api: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]+$")]
    request: dict[str, Any] = Field(default_factory=dict)
    selector: Annotated[str, StringConstraints(pattern=r"^\$")]


class Verify(_Strict):
    """How the executor checks the fix held, after the execution succeeded (any combination)."""

    target_state: list[str] = Field(
        default_factory=list, description="States every target must be in (TargetInfo.state), e.g. [stopped]."
    )
    resource_property: ResourceProperty | None = None
    expect: list[str] = Field(
        default_factory=list, description="Accepted values of resource_property (may hold {{ param }})."
    )
    metric_back_in_band: bool = Field(False, description="The metric that raised the alert is back in its band.")
    within_minutes: int = Field(30, ge=1, description="How long the executor waits for the checks to hold.")


Permission = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$")]
TestRef = Annotated[str, StringConstraints(pattern=r"^tests/[A-Za-z0-9_/]+\.py::[A-Za-z_][A-Za-z0-9_]*(\[[^\]]+\])?$")]


class RunbookMetadata(_Strict):
    """``<id>.meta.yaml``: what AIOps needs to know before it runs the document."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
    title: Annotated[str, StringConstraints(min_length=1)]
    fixes: Annotated[str, StringConstraints(min_length=1)]
    risk: Risk
    approval: Approval
    approvers: Approvers = Field(default_factory=Approvers)
    parameters: dict[str, ParameterMeta]
    targets_parameter: str
    max_targets: int = Field(ge=1, description="Blast-radius default: most targets one remediation may touch.")
    automation_role: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+=,.@_/-]{1,64}$")] = Field(
        description="The one IAM role (name, optionally with a path) SSM Automation assumes for this runbook; "
        "the executor sets AutomationAssumeRole from it, a request never does."
    )
    permissions: list[Permission] = Field(min_length=1)
    rollback: Annotated[str, StringConstraints(min_length=1)]
    changes: Annotated[str, StringConstraints(min_length=1)]
    verify: Verify | None = None
    tests: list[TestRef] = Field(min_length=1)

    @field_validator("tests", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


# --------------------------------------------------------------------------------------------------
# Runbook and Catalog
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runbook:
    """One validated runbook: the SSM document exactly as written plus its metadata."""

    id: str
    metadata: RunbookMetadata
    document: dict[str, Any]
    document_text: str
    document_path: Path
    metadata_path: Path

    @property
    def document_name(self) -> str:
        """Name of the SSM document (``MatCarv-<id>``)."""
        return DOCUMENT_PREFIX + self.id

    @property
    def content_hash(self) -> str:
        """sha256 of the document text: compare with SSM's ``Hash`` to know whether to publish."""
        return hashlib.sha256(self.document_text.encode("utf-8")).hexdigest()

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self.document["mainSteps"])

    @property
    def step_actions(self) -> list[str]:
        """Actions used, each once, in order of first use."""
        return list(dict.fromkeys(step["action"] for step in self.steps))

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """The document's parameters (type, default, allowedPattern ...)."""
        return dict(self.document.get("parameters") or {})

    @property
    def required_parameters(self) -> list[str]:
        return [name for name, spec in self.parameters.items() if "default" not in spec]

    @property
    def defaults(self) -> dict[str, Any]:
        return {name: spec["default"] for name, spec in self.parameters.items() if "default" in spec}

    @property
    def target_kind(self) -> str | None:
        return self.metadata.parameters[self.metadata.targets_parameter].target

    @property
    def api_calls(self) -> list[tuple[str, str]]:
        """(service, Api) of every AWS API the steps name, in order, each once."""
        calls = (
            (str(step["inputs"]["Service"]).lower(), str(step["inputs"]["Api"]))
            for step in self.steps
            if "Service" in (step.get("inputs") or {}) and "Api" in (step.get("inputs") or {})
        )
        return list(dict.fromkeys(calls))

    @property
    def derived_permissions(self) -> set[str]:
        """IAM actions the steps visibly need (scripts excepted); ``metadata.permissions`` covers them."""
        return needed_permissions((step["action"], step.get("inputs") or {}) for step in self.steps)

    def render_changes(self, params: Mapping[str, Any]) -> str:
        """The ``changes`` text with ``{{ param }}`` filled from ``params`` (defaults for the rest)."""
        values = {**self.defaults, **params}

        def fill(match: re.Match[str]) -> str:
            value = values.get(match.group(1).strip(), match.group(0))
            return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

        return _REFERENCE.sub(fill, self.metadata.changes)


@dataclass
class Catalog:
    """The runbooks that loaded, and the files that did not."""

    directory: Path
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)

    def get(self, runbook_id: str) -> Runbook:
        try:
            return self.runbooks[runbook_id]
        except KeyError:
            known = ", ".join(sorted(self.runbooks)) or "none"
            raise KeyError(f"no runbook {runbook_id!r} in {self.directory}; known: {known}") from None

    def __getitem__(self, runbook_id: str) -> Runbook:
        return self.get(runbook_id)

    def __contains__(self, runbook_id: object) -> bool:
        return runbook_id in self.runbooks

    def __iter__(self) -> Iterator[Runbook]:
        return iter(self.runbooks[rid] for rid in sorted(self.runbooks))

    def __len__(self) -> int:
        return len(self.runbooks)

    @property
    def ids(self) -> list[str]:
        return sorted(self.runbooks)


def load_catalog(directory: Path | None = None) -> Catalog:
    """Every runbook in ``directory`` (default ``<include_dir>/runbooks``). Broken runbooks land in
    ``.errors`` (all their problems, each naming the file and the field); the others load."""
    directory = Path(directory) if directory is not None else get_settings().include_dir / "runbooks"
    catalog = Catalog(directory=directory)
    if not directory.is_dir():
        catalog.errors.append(ConfigError(_shown(directory), "", "runbook directory does not exist"))
        return catalog
    documents: dict[str, Path] = {}
    metas: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.name.endswith(META_SUFFIX):
            metas[path.name.removesuffix(META_SUFFIX)] = path
        elif path.name.endswith(DOCUMENT_SUFFIX):
            documents[path.name.removesuffix(DOCUMENT_SUFFIX)] = path
        elif path.suffix in (".yml", ".json"):
            catalog.errors.append(ConfigError(_shown(path), "", "runbooks are <id>.yaml + <id>.meta.yaml"))
    for stem in sorted(documents.keys() | metas.keys()):
        if stem not in metas:
            catalog.errors.append(ConfigError(
                _shown(documents[stem]), "metadata", f"no metadata: expected {stem}{META_SUFFIX} next to it"))
            continue
        if stem not in documents:
            catalog.errors.append(ConfigError(
                _shown(metas[stem]), "document", f"no document: expected {stem}{DOCUMENT_SUFFIX} next to it"))
            continue
        runbook, errors = load_runbook(documents[stem], metas[stem])
        catalog.errors.extend(errors)
        if runbook is not None:
            catalog.runbooks[runbook.id] = runbook
    return catalog


def load_runbook(document_path: Path, metadata_path: Path) -> tuple[Runbook | None, list[ConfigError]]:
    """One runbook, or ``None`` with every problem found."""
    doc_file, meta_file = _shown(document_path), _shown(metadata_path)
    try:
        text = document_path.read_bytes().decode("utf-8")  # bytes: the hash is of the file as written
    except (OSError, UnicodeDecodeError) as exc:
        return None, [ConfigError(doc_file, "", f"cannot read: {exc}")]
    raw_document, errors = _parse_yaml(doc_file, text)
    try:
        meta_text = metadata_path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [*errors, ConfigError(meta_file, "", f"cannot read: {exc}")]
    raw_meta, meta_errors = _parse_yaml(meta_file, meta_text)
    errors += meta_errors
    if raw_document is None or raw_meta is None:
        return None, errors

    if len(text.encode("utf-8")) > MAX_DOCUMENT_BYTES:
        errors.append(ConfigError(doc_file, "", f"larger than SSM's {MAX_DOCUMENT_BYTES} bytes"))
    document = _validate_model(doc_file, AutomationDocument, raw_document, errors)
    if document is not None:
        for check in DOCUMENT_CHECKS:
            errors += [ConfigError(doc_file, where, message) for where, message in check(document)]
    metadata = _validate_model(meta_file, RunbookMetadata, raw_meta, errors)
    stem = document_path.name.removesuffix(DOCUMENT_SUFFIX)
    if metadata is not None and metadata.id != stem:
        errors.append(ConfigError(meta_file, "id", f"must equal the file name {stem!r}, got {metadata.id!r}"))
    if not SSM_NAME.fullmatch(DOCUMENT_PREFIX + stem):
        errors.append(ConfigError(doc_file, "", f"{DOCUMENT_PREFIX + stem!r} is not a valid SSM document name"))
    if document is not None and metadata is not None:
        for check_pair in METADATA_CHECKS:
            errors += [ConfigError(meta_file, where, message) for where, message in check_pair(metadata, document)]
    if errors or document is None or metadata is None:
        return None, errors
    return Runbook(
        id=metadata.id,
        metadata=metadata,
        document=raw_document,
        document_text=text,
        document_path=document_path,
        metadata_path=metadata_path,
    ), []


# --------------------------------------------------------------------------------------------------
# Checks: each yields (field, message); the loader names the file
# --------------------------------------------------------------------------------------------------

Problems = Iterator[tuple[str, str]]
_M = TypeVar("_M", bound=BaseModel)


def _check_assume_role(document: AutomationDocument) -> Problems:
    if document.assumeRole.strip() != ASSUME_ROLE:
        yield "assumeRole", f"must be {ASSUME_ROLE!r} (the executor passes the role), got {document.assumeRole!r}"
    if ASSUME_ROLE_PARAMETER not in document.parameters:
        yield "parameters", f"missing {ASSUME_ROLE_PARAMETER}"


def _check_parameters(document: AutomationDocument) -> Problems:
    for name, spec in document.parameters.items():
        where = f"parameters.{name}"
        if spec.type not in VALUE_COERCERS:
            yield f"{where}.type", f"{spec.type} cannot be passed by the executor (use {', '.join(VALUE_COERCERS)})"
            continue
        if spec.type in ("String", "StringList") and spec.allowedPattern is None:
            yield f"{where}.allowedPattern", "required on String and StringList parameters"
        if spec.allowedPattern is not None:
            if not _anchored(spec.allowedPattern):
                yield f"{where}.allowedPattern", "must be anchored (^...$) so SSM checks the whole value too"
            try:
                re.compile(spec.allowedPattern)
            except re.error as exc:
                yield f"{where}.allowedPattern", f"not a regular expression: {exc}"
                continue
        if "default" in spec.model_fields_set and spec.allowedPattern is not None:
            try:
                value = VALUE_COERCERS[spec.type](spec.default)
            except ValueError as exc:
                yield f"{where}.default", str(exc)
                continue
            for item in value if isinstance(value, list) else [value]:
                if re.fullmatch(spec.allowedPattern, item) is None:
                    yield f"{where}.default", f"{item!r} does not match the allowedPattern"


def _check_steps(document: AutomationDocument) -> Problems:
    seen: set[str] = set()
    for index, step in enumerate(document.mainSteps):
        where = f"mainSteps[{index}]"
        if step.name in seen:
            yield f"{where}.name", f"duplicate step name {step.name!r}"
        seen.add(step.name)
        spec = STEP_ACTIONS.get(step.action)
        if spec is None:
            yield f"{where}.action", f"unsupported action {step.action!r}"
            continue
        for required in spec.required_inputs:
            if required not in step.inputs:
                yield f"{where}.inputs.{required}", f"required by {step.action}"
        if step.action == "aws:sleep" and not ({"Duration", "Timestamp"} & step.inputs.keys()):
            yield f"{where}.inputs", "aws:sleep needs Duration or Timestamp"


def _check_references(document: AutomationDocument) -> Problems:
    steps = {step.name: step for step in document.mainSteps}

    def outputs_of(step_name: str) -> set[str]:
        step = steps[step_name]
        builtin = STEP_ACTIONS[step.action].builtin_outputs if step.action in STEP_ACTIONS else ()
        return {out.Name for out in step.outputs} | set(builtin)

    def resolve(token: str) -> str | None:
        if token in SYSTEM_VARIABLES or token in document.parameters:
            return None
        if _PARAMETER_REF.fullmatch(token):
            return f"{{{{ {token} }}}} is neither a parameter nor a system variable"
        match = _OUTPUT_REF.fullmatch(token)
        if match is None:
            return f"malformed reference {{{{ {token} }}}}"
        step_name, output = match.groups()
        if step_name not in steps:
            return f"{{{{ {token} }}}}: no step named {step_name!r}"
        if output not in outputs_of(step_name):
            return f"{{{{ {token} }}}}: step {step_name!r} has no output {output!r}"
        return None

    yield from (("assumeRole", p) for p in _problems_in(document.assumeRole, resolve))
    for index, step in enumerate(document.mainSteps):
        for where, text in _strings(step.inputs, f"mainSteps[{index}].inputs"):
            for problem in _problems_in(text, resolve):
                yield where, problem
    for index, output in enumerate(document.outputs):
        unresolved = resolve(output.strip())
        if unresolved is not None or "." not in output:
            yield f"outputs[{index}]", unresolved or f"{output!r} must be StepName.OutputName"


def _check_flow(document: AutomationDocument) -> Problems:
    """Every jump lands on a step, every step is reachable from the first."""
    names = [step.name for step in document.mainSteps]
    edges: dict[str, set[str]] = {name: set() for name in names}

    def target(where: str, step_name: str, jump: object) -> Iterator[tuple[str, str]]:
        if not isinstance(jump, str) or jump not in edges:
            yield where, f"{jump!r} is not a step of this document"
        else:
            edges[step_name].add(jump)

    for index, step in enumerate(document.mainSteps):
        where = f"mainSteps[{index}]"
        if step.action == "aws:branch":
            choices = step.inputs.get("Choices")
            if not isinstance(choices, list) or not choices:
                yield f"{where}.inputs.Choices", "must be a non-empty list"
                choices = []
            for cidx, choice in enumerate(choices):
                cwhere = f"{where}.inputs.Choices[{cidx}]"
                if not isinstance(choice, dict):
                    yield cwhere, "must be a mapping"
                    continue
                yield from target(f"{cwhere}.NextStep", step.name, choice.get("NextStep"))
                yield from _check_choice(cwhere, choice)
            if "Default" in step.inputs:
                yield from target(f"{where}.inputs.Default", step.name, step.inputs["Default"])
        elif step.nextStep is not None:
            yield from target(f"{where}.nextStep", step.name, step.nextStep)
        elif not step.isEnd and index + 1 < len(names):
            edges[step.name].add(names[index + 1])
        for hook, plain in (("onFailure", ("Abort", "Continue")), ("onCancel", ("Abort",))):
            value = getattr(step, hook)
            if value is None or value in plain:
                continue
            if not value.startswith("step:"):
                yield f"{where}.{hook}", f"must be {' or '.join(plain)} or step:<name>, got {value!r}"
                continue
            yield from target(f"{where}.{hook}", step.name, value.removeprefix("step:"))
    reached, todo = set(), [names[0]]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(edges[name])
    for index, name in enumerate(names):
        if name not in reached:
            yield f"mainSteps[{index}]", f"step {name!r} is unreachable"


def _check_choice(where: str, choice: Mapping[str, Any]) -> Problems:
    operators = set(choice) & BRANCH_OPERATORS
    combinators = set(choice) & _BRANCH_COMBINATORS
    if combinators:
        return
    if "Variable" not in choice:
        yield f"{where}.Variable", "a choice compares a Variable (or combines choices with And/Or/Not)"
    if len(operators) != 1:
        yield where, f"needs exactly one operator of {sorted(BRANCH_OPERATORS)}, got {sorted(operators)}"


#: Checks of the document alone; each yields (field, message).
DOCUMENT_CHECKS: tuple[Callable[[AutomationDocument], Problems], ...] = (
    _check_assume_role,
    _check_parameters,
    _check_steps,
    _check_references,
    _check_flow,
)


def _check_parameters_agree(meta: RunbookMetadata, document: AutomationDocument) -> Problems:
    for name in sorted(document.parameters.keys() - meta.parameters.keys()):
        yield "parameters", f"document parameter {name!r} is missing from the metadata"
    for name in sorted(meta.parameters.keys() - document.parameters.keys()):
        yield f"parameters.{name}", "not a parameter of the document"
    for name, pmeta in meta.parameters.items():
        doc_param = document.parameters.get(name)
        if doc_param is not None and doc_param.allowedPattern is not None and doc_param.allowedPattern != pmeta.pattern:
            yield (f"parameters.{name}.pattern",
                   f"{pmeta.pattern!r} differs from the document's allowedPattern {doc_param.allowedPattern!r}")


def _check_targets(meta: RunbookMetadata, document: AutomationDocument) -> Problems:
    target = meta.parameters.get(meta.targets_parameter)
    if target is None:
        yield "targets_parameter", f"{meta.targets_parameter!r} is not a parameter"
    elif target.target is None:
        yield f"parameters.{meta.targets_parameter}.target", "the targets parameter needs a target kind"


def _check_approvers(meta: RunbookMetadata, document: AutomationDocument) -> Problems:
    if meta.approval == "requires-approval" and meta.approvers.count == 0:
        yield "approvers", "a runbook that requires approval needs at least one approver (user or role)"
    if meta.approval == "requires-two-approvals" and not (len(set(meta.approvers.users)) >= 2 or meta.approvers.roles):
        yield "approvers", "two approvals need at least two users or a role"


def _check_placeholders(meta: RunbookMetadata, document: AutomationDocument) -> Problems:
    def resolve(token: str) -> str | None:
        return None if token in meta.parameters else f"{{{{ {token} }}}} is not a parameter"

    for problem in _problems_in(meta.changes, resolve):
        yield "changes", problem
    if meta.verify is not None:
        if not (meta.verify.target_state or meta.verify.resource_property or meta.verify.metric_back_in_band):
            yield "verify", "give target_state, a resource_property (with expect) or metric_back_in_band: true"
        if meta.verify.resource_property is not None and not meta.verify.expect:
            yield "verify.expect", "required with resource_property"
        texts = list(_strings(meta.verify.resource_property.request, "verify.resource_property.request")) if (
            meta.verify.resource_property is not None) else []
        texts += [(f"verify.expect[{i}]", value) for i, value in enumerate(meta.verify.expect)]
        for where, text in texts:
            for problem in _problems_in(text, resolve):
                yield where, problem


def _check_permissions(meta: RunbookMetadata, document: AutomationDocument) -> Problems:
    needed = needed_permissions((step.action, step.inputs) for step in document.mainSteps)
    missing = sorted(needed - set(meta.permissions))
    if missing:
        yield "permissions", f"the steps also need {missing}"


#: Checks of the metadata against its document; each yields (field in the metadata, message).
METADATA_CHECKS: tuple[Callable[[RunbookMetadata, AutomationDocument], Problems], ...] = (
    _check_parameters_agree,
    _check_targets,
    _check_approvers,
    _check_placeholders,
    _check_permissions,
)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _shown(path: Path) -> Path:
    """Paths inside the project are reported relative to it (``include/runbooks/x.yaml``)."""
    try:
        return path.resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        return path


def _parse_yaml(path: Path, text: str) -> tuple[dict[str, Any] | None, list[ConfigError]]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(yaml)"
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [ConfigError(path, where, f"not valid YAML: {problem}")]
    if not isinstance(raw, dict):
        return None, [ConfigError(path, "(root)", "expected a mapping of fields")]
    return raw, []


def _validate_model(path: Path, model: type[_M], raw: dict[str, Any], errors: list[ConfigError]) -> _M | None:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            errors.append(ConfigError(path, _field_path(err["loc"]), err["msg"]))
        return None


def _field_path(loc: Sequence[int | str]) -> str:
    """``('mainSteps', 2, 'action')`` -> ``mainSteps[2].action``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string inside nested inputs, with its field path."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


def _problems_in(text: str, resolve: Callable[[str], str | None]) -> Iterator[str]:
    for match in _REFERENCE.finditer(text):
        problem = resolve(match.group(1).strip())
        if problem is not None:
            yield problem


def _anchored(pattern: str) -> bool:
    """Every top-level alternative starts with ``^`` and ends with an unescaped ``$``."""
    return all(alt.startswith("^") and alt.endswith("$") and not alt.endswith("\\$")
               for alt in _top_level_alternatives(pattern))


def _top_level_alternatives(pattern: str) -> list[str]:
    parts, depth, in_class, escaped, start = [], 0, False, False, 0
    for index, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
    parts.append(pattern[start:])
    return parts
