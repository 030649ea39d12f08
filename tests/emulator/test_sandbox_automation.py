"""The sandbox's SSM Automation executor runs real Automation documents against the emulated account.

Documents are written inline as YAML, published with CreateDocument and started with plain boto3,
exactly as on AWS; assertions are on AWS state (instance states, parameters, commands) and on the
API's response shapes and error codes.
"""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from aiops_sandbox import automation

pytestmark = pytest.mark.emulator

TERMINAL = {"Success", "Failed", "TimedOut", "Cancelled"}


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _client(sandbox, service):
    return boto3.client(service, endpoint_url=sandbox.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def ssm(sandbox):
    return _client(sandbox, "ssm")


@pytest.fixture(scope="module")
def ec2(sandbox):
    return _client(sandbox, "ec2")


@pytest.fixture(scope="module")
def image_id(ec2):
    return ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]


def _instance(ec2, image_id, state="running"):
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")[
        "Instances"][0]["InstanceId"]
    if state == "stopped":
        ec2.stop_instances(InstanceIds=[instance_id])
    elif state == "terminated":
        ec2.terminate_instances(InstanceIds=[instance_id])
    assert _state(ec2, instance_id) == state
    return instance_id


def _state(ec2, instance_id):
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def _document(ssm, content, prefix="aiops-test"):
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    ssm.create_document(Content=content, Name=name, DocumentType="Automation", DocumentFormat="YAML")
    return name


def _wait_for(ssm, execution_id, statuses=frozenset(TERMINAL), timeout=15.0):
    """Poll GetAutomationExecution until its status is in ``statuses`` (deadline, short polls)."""
    deadline = time.monotonic() + timeout
    while True:
        execution = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
        if execution["AutomationExecutionStatus"] in statuses:
            return execution
        assert time.monotonic() < deadline, f"still {execution['AutomationExecutionStatus']}: {execution}"
        time.sleep(0.05)


def _run(ssm, document, **parameters):
    execution_id = ssm.start_automation_execution(
        DocumentName=document, Parameters={k: v if isinstance(v, list) else [v] for k, v in parameters.items()}
    )["AutomationExecutionId"]
    return _wait_for(ssm, execution_id)


def _steps(execution):
    return [(s["StepName"], s["StepStatus"]) for s in execution["StepExecutions"]]


def _error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


INSTANCE_PARAMETER = """
  InstanceId:
    type: String
    description: The instance to act on
    allowedPattern: '^i-[a-z0-9]{8,17}$'
"""

# --------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------

STOP_INSTANCE = """
schemaVersion: '0.3'
description: Stop an instance and report its state before and after
assumeRole: '{{ AutomationAssumeRole }}'
parameters:""" + INSTANCE_PARAMETER + """
  AutomationAssumeRole:
    type: String
    default: ''
mainSteps:
  - name: DescribeBefore
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: DescribeInstances
      InstanceIds: ['{{ InstanceId }}']
    outputs:
      - Name: StateBefore
        Selector: $.Reservations[0].Instances[0].State.Name
        Type: String
      - Name: InstanceIds
        Selector: $.Reservations[*].Instances[*].InstanceId
        Type: StringList
  - name: StopInstance
    action: aws:changeInstanceState
    timeoutSeconds: 30
    inputs:
      InstanceIds: '{{ DescribeBefore.InstanceIds }}'
      DesiredState: stopped
  - name: DescribeAfter
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: DescribeInstances
      InstanceIds: ['{{ InstanceId }}']
    outputs:
      - Name: StateAfter
        Selector: $.Reservations[0].Instances[0].State.Name
        Type: String
      - Name: StateCode
        Selector: $.Reservations[0].Instances[0].State.Code
        Type: Integer
outputs:
  - DescribeBefore.StateBefore
  - DescribeAfter.StateAfter
  - DescribeAfter.StateCode
"""

WAIT_FOR_STATE = """
schemaVersion: '0.3'
parameters:""" + INSTANCE_PARAMETER + """
  DesiredState:
    type: String
    allowedValues: [running, terminated]
mainSteps:
  - name: StartInstance
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: StartInstances
      InstanceIds: ['{{ InstanceId }}']
  - name: WaitForState
    action: aws:waitForAwsResourceProperty
    timeoutSeconds: 1
    inputs:
      Service: ec2
      Api: DescribeInstances
      InstanceIds: ['{{ InstanceId }}']
      PropertySelector: $.Reservations[0].Instances[0].State.Name
      DesiredValues: ['{{ DesiredState }}']
"""

ASSERT_THEN_STOP = """
schemaVersion: '0.3'
parameters:""" + INSTANCE_PARAMETER + """
mainSteps:
  - name: AssertStopped
    action: aws:assertAwsResourceProperty
    onFailure: ON_FAILURE
    inputs:
      Service: ec2
      Api: DescribeInstances
      InstanceIds: ['{{ InstanceId }}']
      PropertySelector: $.Reservations[0].Instances[0].State.Name
      DesiredValues: [stopped]
  - name: StopInstance
    action: aws:changeInstanceState
    isEnd: true
    inputs:
      InstanceIds: ['{{ InstanceId }}']
      DesiredState: stopped
  - name: Cleanup
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: CreateTags
      Resources: ['{{ InstanceId }}']
      Tags: [{Key: 'aiops:cleanup', Value: '{{ automation:EXECUTION_ID }}'}]
"""

BRANCH_ON_STATE = """
schemaVersion: '0.3'
parameters:""" + INSTANCE_PARAMETER + """
mainSteps:
  - name: GetState
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: DescribeInstances
      InstanceIds: ['{{ InstanceId }}']
    outputs:
      - Name: State
        Selector: $.Reservations[0].Instances[0].State.Name
        Type: String
  - name: ChooseAction
    action: aws:branch
    inputs:
      Choices:
        - NextStep: StopIt
          Variable: '{{ GetState.State }}'
          StringEquals: running
        - NextStep: StartIt
          And:
            - Variable: '{{ GetState.State }}'
              StringEquals: stopped
            - Not:
                Variable: '{{ GetState.State }}'
                StringEquals: terminated
      Default: NothingToDo
  - name: StopIt
    action: aws:changeInstanceState
    isEnd: true
    inputs: {InstanceIds: ['{{ InstanceId }}'], DesiredState: stopped}
  - name: StartIt
    action: aws:changeInstanceState
    isEnd: true
    inputs: {InstanceIds: ['{{ InstanceId }}'], DesiredState: running}
  - name: NothingToDo
    action: aws:sleep
    inputs: {Duration: PT0S}
"""

RUN_SCRIPT = """
schemaVersion: '0.3'
parameters:""" + INSTANCE_PARAMETER + """
mainSteps:
  - name: RunScript
    action: aws:runCommand
    inputs:
      DocumentName: AWS-RunShellScript
      InstanceIds: ['{{ InstanceId }}']
      Comment: 'execution {{ automation:EXECUTION_ID }}'
      Parameters:
        commands: ['echo {{ automation:EXECUTION_ID }}', 'uptime']
outputs: [RunScript.CommandId, RunScript.Status]
"""

UNSUPPORTED_ACTION = """
schemaVersion: '0.3'
mainSteps:
  - name: Announce
    action: aws:sleep
    inputs: {Duration: PT0S}
  - name: RunPython
    action: aws:executeStateMachine
    onFailure: ON_FAILURE
    inputs:
      stateMachineArn: arn:aws:states:us-east-1:123456789012:stateMachine:x
  - name: NeverReached
    action: aws:sleep
    inputs: {Duration: PT0S}
"""

MOTO_LACKS_API = """
schemaVersion: '0.3'
mainSteps:
  - name: CheckAgents
    action: aws:assertAwsResourceProperty
    onFailure: Continue
    inputs:
      Service: ec2
      Api: GetEbsDefaultKmsKeyId
      PropertySelector: $.KmsKeyId
      DesiredValues: [alias/aws/ebs]
"""

EXECUTE_SCRIPT = """
schemaVersion: '0.3'
parameters:
  Desired: {type: Integer, default: 2}
mainSteps:
  - name: Compute
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: handler
      InputPayload: {Desired: '{{ Desired }}'}
      Script: |-
        import boto3

        def handler(events, context):
            zones = boto3.client("ec2").describe_availability_zones()["AvailabilityZones"]
            return {"Next": int(events["Desired"]) + 1, "Zones": len(zones)}
    outputs:
      - {Name: Next, Selector: $.Payload.Next, Type: Integer}
      - {Name: Zones, Selector: $.Payload.Zones, Type: Integer}
outputs: [Compute.Next, Compute.Zones]
"""

AGENTS_ONLINE = """
schemaVersion: '0.3'
parameters:
  InstanceId: {type: String, allowedPattern: '^i-[0-9a-f]{8,17}$'}
mainSteps:
  - name: CheckAgent
    action: aws:assertAwsResourceProperty
    inputs:
      Service: ssm
      Api: DescribeInstanceInformation
      InstanceInformationFilterList:
        - {key: InstanceIds, valueSet: ['{{ InstanceId }}']}
      PropertySelector: $.InstanceInformationList..PingStatus
      DesiredValues: [Online]
"""

BLOCK_PUBLIC_BUCKET = """
schemaVersion: '0.3'
parameters:
  BucketName:
    type: String
    allowedPattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$'
mainSteps:
  - name: PutPublicAccessBlock
    action: aws:executeAwsApi
    inputs:
      Service: s3
      Api: PutPublicAccessBlock
      Bucket: '{{ BucketName }}'
      PublicAccessBlockConfiguration:
        BlockPublicAcls: true
        IgnorePublicAcls: true
        BlockPublicPolicy: true
        RestrictPublicBuckets: true
  - name: AssertBlocked
    action: aws:assertAwsResourceProperty
    inputs:
      Service: s3
      Api: GetPublicAccessBlock
      Bucket: '{{ BucketName }}'
      PropertySelector: $.PublicAccessBlockConfiguration.BlockPublicAcls
      DesiredValues: ['True']
  - name: ReadBack
    action: aws:executeAwsApi
    inputs:
      Service: s3
      Api: GetPublicAccessBlock
      Bucket: '{{ BucketName }}'
    outputs:
      - {Name: Configuration, Selector: $.PublicAccessBlockConfiguration, Type: StringMap}
      - {Name: BlockPolicy, Selector: $.PublicAccessBlockConfiguration.BlockPublicPolicy, Type: Boolean}
outputs: [ReadBack.BlockPolicy]
"""

VALIDATED_PARAMETERS = """
schemaVersion: '0.3'
parameters:""" + INSTANCE_PARAMETER + """
  Count:
    type: Integer
    default: 1
  Action:
    type: String
    allowedValues: [stop, start]
    default: stop
  DryRun:
    type: Boolean
    default: true
mainSteps:
  - name: Nothing
    action: aws:sleep
    inputs: {Duration: PT0S}
"""

NAP = """
schemaVersion: '0.3'
parameters:
  Note:
    type: String
    default: none
mainSteps:
  - name: First
    action: aws:sleep
    inputs: {Duration: PT0S}
  - name: Nap
    action: aws:sleep
    inputs: {Duration: PT1H}
  - name: After
    action: aws:sleep
    inputs: {Duration: PT0S}
"""

THREE_STEPS = """
schemaVersion: '0.3'
mainSteps:
  - {name: One, action: aws:sleep, inputs: {Duration: PT0S}}
  - {name: Two, action: aws:sleep, inputs: {Duration: PT0S}}
  - {name: Three, action: aws:sleep, inputs: {Duration: PT0S}}
"""

PUT_MARKER = """
schemaVersion: '0.3'
parameters:
  Label:
    type: String
mainSteps:
  - name: PutMarker
    action: aws:executeAwsApi
    inputs:
      Service: ssm
      Api: PutParameter
      Name: '/aiops-test/{{ automation:EXECUTION_ID }}'
      Type: String
      Value: 'VERSION|{{ global:ACCOUNT_ID }}|{{ global:REGION }}|{{ Label }}'
    outputs:
      - {Name: Version, Selector: $.Version, Type: Integer}
outputs: [PutMarker.Version]
"""


# --------------------------------------------------------------------------------------
# Step actions
# --------------------------------------------------------------------------------------


def test_execute_api_and_change_instance_state_stop_a_running_instance(ssm, ec2, image_id):
    instance_id = _instance(ec2, image_id, "running")
    execution = _run(ssm, _document(ssm, STOP_INSTANCE), InstanceId=instance_id)

    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    assert _state(ec2, instance_id) == "stopped"
    assert _steps(execution) == [("DescribeBefore", "Success"), ("StopInstance", "Success"),
                                 ("DescribeAfter", "Success")]
    assert execution["Outputs"] == {"DescribeBefore.StateBefore": ["running"],
                                    "DescribeAfter.StateAfter": ["stopped"],
                                    "DescribeAfter.StateCode": ["80"]}
    first, stop, _ = execution["StepExecutions"]
    assert first["Outputs"] == {"StateBefore": ["running"], "InstanceIds": [instance_id]}
    assert first["Inputs"]["InstanceIds"] == f'["{instance_id}"]'  # JSON-encoded, as AWS records them
    assert stop["Inputs"]["InstanceIds"] == f'["{instance_id}"]'  # a StringList output stays a list
    assert stop["Action"] == "aws:changeInstanceState"
    assert stop["TimeoutSeconds"] == 30
    assert execution["Parameters"] == {"InstanceId": [instance_id], "AutomationAssumeRole": [""]}
    assert execution["ExecutionStartTime"] <= first["ExecutionStartTime"] <= execution["ExecutionEndTime"]
    assert execution["Mode"] == "Auto"
    assert execution["DocumentVersion"] == "1"


@pytest.mark.parametrize(
    ("desired", "status"),
    [
        pytest.param("running", "Success", id="wait-sees-the-instance-running"),
        pytest.param("terminated", "TimedOut", id="wait-times-out-after-timeoutSeconds"),
    ],
)
def test_wait_for_resource_property(ssm, ec2, image_id, desired, status):
    instance_id = _instance(ec2, image_id, "stopped")
    execution = _run(ssm, _document(ssm, WAIT_FOR_STATE), InstanceId=instance_id, DesiredState=desired)

    assert execution["AutomationExecutionStatus"] == status
    assert _steps(execution) == [("StartInstance", "Success"), ("WaitForState", status)]
    assert _state(ec2, instance_id) == "running"
    if status == "TimedOut":
        wait = execution["StepExecutions"][1]
        assert "WaitForState" in wait["FailureMessage"]
        assert "last value: running" in wait["FailureMessage"]
        assert execution["FailureMessage"] == wait["FailureMessage"]


@pytest.mark.parametrize(
    ("on_failure", "status", "steps", "final_state", "cleaned_up"),
    [
        pytest.param("Abort", "Failed", ["AssertStopped"], "running", False, id="abort-stops-the-runbook"),
        pytest.param("Continue", "Success", ["AssertStopped", "StopInstance"], "stopped", False,
                     id="continue-runs-the-next-step"),
        pytest.param("step:Cleanup", "Failed", ["AssertStopped", "Cleanup"], "running", True,
                     id="step-jumps-to-cleanup-and-still-fails"),
    ],
)
def test_failing_assert_step(ssm, ec2, image_id, on_failure, status, steps, final_state, cleaned_up):
    instance_id = _instance(ec2, image_id, "running")
    document = _document(ssm, ASSERT_THEN_STOP.replace("ON_FAILURE", on_failure))
    execution = _run(ssm, document, InstanceId=instance_id)

    assert execution["AutomationExecutionStatus"] == status
    assert [name for name, _ in _steps(execution)] == steps
    assertion = execution["StepExecutions"][0]
    assert assertion["StepStatus"] == "Failed"
    assert assertion["FailureMessage"].startswith("Step AssertStopped (aws:assertAwsResourceProperty) failed")
    assert "is running, expected one of ['stopped']" in assertion["FailureMessage"]
    assert assertion["FailureDetails"]["FailureType"] == "Verification"
    if status == "Failed":
        assert execution["FailureMessage"] == assertion["FailureMessage"]
    else:
        assert "FailureMessage" not in execution
    assert _state(ec2, instance_id) == final_state
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]},
                                      {"Name": "key", "Values": ["aiops:cleanup"]}])["Tags"]
    assert [t["Value"] for t in tags] == ([execution["AutomationExecutionId"]] if cleaned_up else [])


@pytest.mark.parametrize(
    ("initial", "path", "final"),
    [
        pytest.param("running", "StopIt", "stopped", id="running-branches-to-stop"),
        pytest.param("stopped", "StartIt", "running", id="stopped-branches-to-start-via-and-not"),
        pytest.param("terminated", "NothingToDo", "terminated", id="terminated-takes-the-default"),
    ],
)
def test_branch_takes_the_right_path(ssm, ec2, image_id, initial, path, final):
    instance_id = _instance(ec2, image_id, initial)
    execution = _run(ssm, _document(ssm, BRANCH_ON_STATE), InstanceId=instance_id)

    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    assert _steps(execution) == [("GetState", "Success"), ("ChooseAction", "Success"), (path, "Success")]
    assert execution["StepExecutions"][1]["NextStep"] == path
    assert execution["StepExecutions"][1]["ValidNextSteps"] == ["StopIt", "StartIt", "NothingToDo"]
    assert _state(ec2, instance_id) == final


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        pytest.param({"Variable": "{{ S }}", "StringEquals": "running"}, True, id="string-equals"),
        pytest.param({"Variable": "{{ S }}", "EqualsIgnoreCase": "RUNNING"}, True, id="equals-ignore-case"),
        pytest.param({"Variable": "{{ N }}", "NumericGreater": 5}, True, id="numeric-greater"),
        pytest.param({"Variable": "{{ N }}", "NumericLesser": 5}, False, id="numeric-lesser"),
        pytest.param({"Variable": "{{ N }}", "NumericEquals": 7}, True, id="numeric-equals"),
        pytest.param({"Variable": "{{ B }}", "BooleanEquals": True}, True, id="boolean-equals"),
        pytest.param({"Variable": "{{ L }}", "Contains": "b"}, True, id="contains-in-list"),
        pytest.param({"Variable": "{{ S }}", "Contains": "unn"}, True, id="contains-substring"),
        pytest.param({"Not": {"Variable": "{{ S }}", "StringEquals": "running"}}, False, id="not"),
        pytest.param({"Or": [{"Variable": "{{ N }}", "NumericLesser": 1},
                             {"Variable": "{{ S }}", "StartsWith": "run"}]}, True, id="or"),
        pytest.param({"And": [{"Variable": "{{ N }}", "NumericGreater": 1},
                              {"Variable": "{{ S }}", "EndsWith": "stop"}]}, False, id="and"),
    ],
)
def test_branch_operators(condition, expected):
    values = {"{{ S }}": "running", "{{ N }}": 7, "{{ B }}": "true", "{{ L }}": ["a", "b"]}
    assert automation.evaluate_condition(condition, lambda v: values.get(v, v)) is expected


@pytest.mark.parametrize(
    ("state", "status"),
    [
        pytest.param("running", "Success", id="running-instance-records-command-id"),
        pytest.param("stopped", "Failed", id="stopped-instance-is-an-invalid-target"),
    ],
)
def test_run_command(ssm, ec2, image_id, state, status):
    instance_id = _instance(ec2, image_id, state)
    execution = _run(ssm, _document(ssm, RUN_SCRIPT), InstanceId=instance_id)

    assert execution["AutomationExecutionStatus"] == status
    step = execution["StepExecutions"][0]
    if status == "Success":
        command_id = step["Outputs"]["CommandId"][0]
        assert execution["Outputs"] == {"RunScript.CommandId": [command_id], "RunScript.Status": ["Success"]}
        command = ssm.list_commands(CommandId=command_id)["Commands"][0]
        assert command["DocumentName"] == "AWS-RunShellScript"
        # moto 5.2.5 lists every instance of the Region on a command sent by InstanceIds
        assert instance_id in command["InstanceIds"]
        assert command["Parameters"]["commands"] == [f"echo {execution['AutomationExecutionId']}", "uptime"]
    else:
        assert "InvalidInstanceId" in step["FailureMessage"]
        assert instance_id in step["FailureMessage"]
        assert execution["Outputs"] == {
            "RunScript.CommandId": [automation.NO_OUTPUT], "RunScript.Status": [automation.NO_OUTPUT]}


@pytest.mark.parametrize(
    "on_failure",
    [
        pytest.param("Abort", id="abort"),
        pytest.param("Continue", id="continue-does-not-hide-it"),
    ],
)
def test_unsupported_action_fails_with_a_clear_message(ssm, on_failure):
    execution = _run(ssm, _document(ssm, UNSUPPORTED_ACTION.replace("ON_FAILURE", on_failure)))

    message = ("Step RunPython uses action 'aws:executeStateMachine', which the sandbox executor does not "
               "support (supported: " + ", ".join(automation.SUPPORTED_ACTIONS) + ")")
    assert execution["AutomationExecutionStatus"] == "Failed"
    assert execution["FailureMessage"] == message
    assert _steps(execution) == [("Announce", "Success"), ("RunPython", "Failed")]
    assert execution["StepExecutions"][1]["FailureMessage"] == message


def test_api_the_emulator_lacks_fails_clearly_even_with_continue(ssm):
    execution = _run(ssm, _document(ssm, MOTO_LACKS_API))

    assert execution["AutomationExecutionStatus"] == "Failed"
    assert execution["FailureMessage"] == (
        "Step CheckAgents (aws:assertAwsResourceProperty) failed: the emulator (moto) does not implement "
        "ec2.GetEbsDefaultKmsKeyId, so this step cannot be rehearsed in the sandbox")
    assert execution["StepExecutions"][0]["FailureDetails"]["FailureType"] == "Internal"


def test_boolean_properties_match_aws_spelling(sandbox, ssm):
    bucket = f"aiops-test-{uuid.uuid4().hex[:10]}"
    s3 = _client(sandbox, "s3")
    s3.create_bucket(Bucket=bucket)
    execution = _run(ssm, _document(ssm, BLOCK_PUBLIC_BUCKET), BucketName=bucket)

    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    assert execution["Outputs"] == {"ReadBack.BlockPolicy": ["true"]}
    configuration = execution["StepExecutions"][2]["Outputs"]["Configuration"]
    assert json.loads(configuration[0]) == {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                            "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("$.Reservations[0].Instances[0].State.Name", (True, "running"), id="dotted-index"),
        pytest.param("$.Reservations[*].Instances[*].InstanceId", (True, ["i-1", "i-2"]), id="wildcards"),
        pytest.param("$.Reservations..InstanceId", (True, ["i-1", "i-2"]), id="recursive-descent"),
        pytest.param("$['Reservations'][0]['Instances'][-1].InstanceId", (True, "i-2"), id="quoted-negative"),
        pytest.param("$.Reservations[5].Instances", (False, None), id="missing-index"),
        pytest.param("$.Nope", (False, None), id="missing-key"),
        pytest.param("$", (True, {"Reservations": [{"Instances": [
            {"InstanceId": "i-1", "State": {"Name": "running"}}, {"InstanceId": "i-2"}]}]}), id="root"),
    ],
)
def test_selector_subset(path, expected):
    document = {"Reservations": [{"Instances": [{"InstanceId": "i-1", "State": {"Name": "running"}},
                                                {"InstanceId": "i-2"}]}]}
    assert automation.select(document, path) == expected


def test_templates_globals_and_document_versions(ssm):
    name = _document(ssm, PUT_MARKER.replace("VERSION", "v1"))
    ssm.update_document(Name=name, Content=PUT_MARKER.replace("VERSION", "v2"), DocumentVersion="$LATEST",
                        DocumentFormat="YAML")
    for version, expected in [(None, "1"), ("$DEFAULT", "1"), ("$LATEST", "2"), ("2", "2")]:
        extra = {"DocumentVersion": version} if version else {}
        execution_id = ssm.start_automation_execution(DocumentName=name, Parameters={"Label": ["x y"]},
                                                      **extra)["AutomationExecutionId"]
        execution = _wait_for(ssm, execution_id)
        assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
        assert execution["DocumentVersion"] == expected
        assert execution["Outputs"] == {"PutMarker.Version": ["1"]}
        stored = ssm.get_parameter(Name=f"/aiops-test/{execution_id}")["Parameter"]["Value"]
        assert stored == f"v{expected}|123456789012|us-east-1|x y"


# --------------------------------------------------------------------------------------
# StartAutomationExecution validation, idempotency, errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "needle"),
    [
        pytest.param({"InstanceId": ["i-123; rm -rf /"]}, "regular expression pattern", id="allowed-pattern"),
        pytest.param({}, "required", id="missing-required"),
        pytest.param({"InstanceId": ["i-0123456789abcdef0"], "Bogus": ["x"]}, "not defined",
                     id="unknown-parameter"),
        pytest.param({"InstanceId": ["i-0123456789abcdef0"], "Count": ["many"]}, "not an Integer",
                     id="integer-type"),
        pytest.param({"InstanceId": ["i-0123456789abcdef0"], "DryRun": ["maybe"]}, "not a Boolean",
                     id="boolean-type"),
        pytest.param({"InstanceId": ["i-0123456789abcdef0"], "Action": ["reboot"]}, "must be one of",
                     id="allowed-values"),
        pytest.param({"InstanceId": ["i-0123456789abcdef0", "i-0123456789abcdef1"]}, "exactly one value",
                     id="string-takes-one-value"),
    ],
)
def test_invalid_parameters_are_rejected_at_start(ssm, parameters, needle):
    name = _document(ssm, VALIDATED_PARAMETERS)
    with pytest.raises(ClientError) as excinfo:
        ssm.start_automation_execution(DocumentName=name, Parameters=parameters)
    assert _error_code(excinfo) == "InvalidAutomationExecutionParametersException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert needle in excinfo.value.response["Error"]["Message"]
    listed = ssm.describe_automation_executions(
        Filters=[{"Key": "DocumentNamePrefix", "Values": [name]}])["AutomationExecutionMetadataList"]
    assert listed == []


def test_defaults_fill_in_parameters(ssm):
    name = _document(ssm, VALIDATED_PARAMETERS)
    execution = _run(ssm, name, InstanceId="i-0123456789abcdef0")
    assert execution["AutomationExecutionStatus"] == "Success"
    assert execution["Parameters"] == {"InstanceId": ["i-0123456789abcdef0"], "Count": ["1"],
                                       "Action": ["stop"], "DryRun": ["true"]}


def test_client_token_is_idempotent(ssm):
    name = _document(ssm, NAP.replace("PT1H", "PT0S"))
    token = str(uuid.uuid4())
    tags = [{"Key": "aiops:runbook", "Value": "test"}]
    first = ssm.start_automation_execution(DocumentName=name, Parameters={"Note": ["a"]}, ClientToken=token,
                                           Tags=tags)["AutomationExecutionId"]
    again = ssm.start_automation_execution(DocumentName=name, Parameters={"Note": ["a"]}, ClientToken=token,
                                           Tags=tags)["AutomationExecutionId"]
    assert again == first
    with pytest.raises(ClientError) as excinfo:
        ssm.start_automation_execution(DocumentName=name, Parameters={"Note": ["b"]}, ClientToken=token,
                                       Tags=tags)
    assert _error_code(excinfo) == "IdempotentParameterMismatch"
    _wait_for(ssm, first)
    listed = ssm.describe_automation_executions(
        Filters=[{"Key": "DocumentNamePrefix", "Values": [name]}])["AutomationExecutionMetadataList"]
    assert [e["AutomationExecutionId"] for e in listed] == [first]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        pytest.param(lambda ssm, doc: ssm.start_automation_execution(DocumentName="aiops-no-such-runbook"),
                     "AutomationDefinitionNotFoundException", id="unknown-document"),
        pytest.param(lambda ssm, doc: ssm.start_automation_execution(DocumentName=doc, DocumentVersion="9"),
                     "AutomationDefinitionVersionNotFoundException", id="unknown-document-version"),
        pytest.param(lambda ssm, doc: ssm.get_automation_execution(AutomationExecutionId=str(uuid.uuid4())),
                     "AutomationExecutionNotFoundException", id="unknown-execution"),
        pytest.param(lambda ssm, doc: ssm.stop_automation_execution(AutomationExecutionId=str(uuid.uuid4())),
                     "AutomationExecutionNotFoundException", id="stop-unknown-execution"),
        pytest.param(lambda ssm, doc: ssm.describe_automation_executions(
            Filters=[{"Key": "OpsItemId", "Values": ["oi-1"]}]), "InvalidFilterKey", id="unsupported-filter"),
    ],
)
def test_not_found_errors_have_the_real_codes(ssm, call, code):
    name = _document(ssm, THREE_STEPS)
    with pytest.raises(ClientError) as excinfo:
        call(ssm, name)
    assert _error_code(excinfo) == code


def test_command_document_is_not_an_automation_definition(ssm):
    name = f"aiops-test-cmd-{uuid.uuid4().hex[:8]}"
    ssm.create_document(Name=name, DocumentType="Command", DocumentFormat="YAML", Content=(
        "schemaVersion: '2.2'\nmainSteps:\n  - action: aws:runShellScript\n    name: run\n"
        "    inputs: {runCommand: [uptime]}\n"))
    with pytest.raises(ClientError) as excinfo:
        ssm.start_automation_execution(DocumentName=name)
    assert _error_code(excinfo) == "AutomationDefinitionNotFoundException"


# --------------------------------------------------------------------------------------
# Stop, Describe
# --------------------------------------------------------------------------------------


def test_stop_cancels_a_running_execution(ssm):
    name = _document(ssm, NAP)
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    running = _wait_for(ssm, execution_id, statuses={"InProgress"})
    deadline = time.monotonic() + 5
    while running.get("CurrentStepName") != "Nap":
        assert time.monotonic() < deadline, running
        running = _wait_for(ssm, execution_id, statuses={"InProgress"})
    assert running["CurrentAction"] == "aws:sleep"

    ssm.stop_automation_execution(AutomationExecutionId=execution_id, Type="Cancel")
    execution = _wait_for(ssm, execution_id, timeout=5)

    assert execution["AutomationExecutionStatus"] == "Cancelled"
    assert _steps(execution) == [("First", "Success"), ("Nap", "Cancelled")]
    assert "ExecutionEndTime" in execution
    with pytest.raises(ClientError) as excinfo:
        ssm.stop_automation_execution(AutomationExecutionId=execution_id)
    assert _error_code(excinfo) == "InvalidAutomationStatusUpdateException"


def test_describe_executions_and_step_executions(ssm):
    name = _document(ssm, THREE_STEPS, prefix="aiops-describe")
    done = _run(ssm, name)
    assert done["AutomationExecutionStatus"] == "Success"
    execution_id = done["AutomationExecutionId"]

    def ids(*filters):
        listed = ssm.describe_automation_executions(Filters=list(filters))["AutomationExecutionMetadataList"]
        return [e["AutomationExecutionId"] for e in listed]

    by_name = {"Key": "DocumentNamePrefix", "Values": [name[:-3]]}
    assert execution_id in ids(by_name)
    assert execution_id in ids(by_name, {"Key": "ExecutionStatus", "Values": ["Success"]})
    assert ids(by_name, {"Key": "ExecutionStatus", "Values": ["Failed"]}) == []
    assert ids({"Key": "ExecutionId", "Values": [execution_id]}) == [execution_id]
    metadata = ssm.describe_automation_executions(
        Filters=[{"Key": "ExecutionId", "Values": [execution_id]}])["AutomationExecutionMetadataList"][0]
    assert metadata["DocumentName"] == name
    assert metadata["AutomationExecutionStatus"] == "Success"
    assert metadata["ExecutionEndTime"] >= metadata["ExecutionStartTime"]

    first = ssm.describe_automation_step_executions(AutomationExecutionId=execution_id, MaxResults=2)
    assert [s["StepName"] for s in first["StepExecutions"]] == ["One", "Two"]
    second = ssm.describe_automation_step_executions(AutomationExecutionId=execution_id, MaxResults=2,
                                                     NextToken=first["NextToken"])
    assert [s["StepName"] for s in second["StepExecutions"]] == ["Three"]
    assert "NextToken" not in second
    reverse = ssm.describe_automation_step_executions(AutomationExecutionId=execution_id, ReverseOrder=True)
    assert [s["StepName"] for s in reverse["StepExecutions"]] == ["Three", "Two", "One"]
    named = ssm.describe_automation_step_executions(
        AutomationExecutionId=execution_id, Filters=[{"Key": "StepName", "Values": ["Two"]}])
    assert [(s["StepName"], s["StepStatus"]) for s in named["StepExecutions"]] == [("Two", "Success")]


def test_execute_script_runs_python_against_the_emulator_and_returns_its_payload(ssm):
    execution = _run(ssm, _document(ssm, EXECUTE_SCRIPT))
    assert execution["AutomationExecutionStatus"] == "Success"
    assert execution["Outputs"]["Compute.Next"] == ["3"]
    assert int(execution["Outputs"]["Compute.Zones"][0]) >= 1  # boto3 inside the script reached the emulator


def test_running_instances_have_an_online_ssm_agent(ssm, ec2, image_id):
    instance = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    execution = _run(ssm, _document(ssm, AGENTS_ONLINE), InstanceId=instance)
    assert execution["AutomationExecutionStatus"] == "Success"
