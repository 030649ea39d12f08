"""Create the simulated account's AWS resources in the emulator (EC2, ASG, ALB, RDS, EBS, S3, IAM,
SNS, SQS + EventBridge, CloudTrail, Logs, SES) and return what was created.

This is sandbox tooling: it talks to the emulator endpoint with plain boto3 clients. Platform code
never does this; it goes through Airflow connections (``aiops.core.aws``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiops_sandbox.topology import PROTECTED_TAG, Topology


@dataclass
class Created:
    account_id: str
    region: str
    vpc_id: str = ""
    subnet_ids: list[str] = field(default_factory=list)
    security_groups: dict[str, str] = field(default_factory=dict)  # name -> id
    instances: dict[str, str] = field(default_factory=dict)  # spec name -> instance id
    asg_names: list[str] = field(default_factory=list)
    load_balancers: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> arn, dim
    target_groups: dict[str, dict[str, str]] = field(default_factory=dict)  # service/env -> arn, dim, lb
    databases: dict[str, str] = field(default_factory=dict)  # identifier -> arn
    volumes: dict[str, str] = field(default_factory=dict)  # label -> volume id
    snapshots: dict[str, str] = field(default_factory=dict)  # label -> snapshot id
    elastic_ips: dict[str, str] = field(default_factory=dict)  # label -> allocation id
    buckets: dict[str, str] = field(default_factory=dict)  # role -> bucket name
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)  # team -> topic arn
    queues: dict[str, str] = field(default_factory=dict)  # name -> url
    trail_name: str = ""
    log_groups: dict[str, int | None] = field(default_factory=dict)  # name -> retention days
    backdates: list[dict[str, str]] = field(default_factory=list)
    ops: dict[str, Any] = field(default_factory=dict)  # routine-operations fixtures (issue 9)


def _tags(**kw: str) -> list[dict[str, str]]:
    return [{"Key": k.replace("__", ":"), "Value": v} for k, v in kw.items()]


def _resource_tags(spec_name: str, service: str, env: str, team: str, owner: str, protected: bool,
                   **extra: str | None) -> list[dict[str, str]]:
    tags = {"Name": spec_name, "service": service, "env": env, "team": team, "owner": owner}
    if protected:
        tags[PROTECTED_TAG] = "true"
    tags.update({k.replace("__", ":"): v for k, v in extra.items() if v})
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def create_network(clients: Any, topo: Topology, out: Created) -> None:
    ec2 = clients("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": _tags(Name="matcarv-main", env="prod", team="platform")}])["Vpc"]
    out.vpc_id = vpc["VpcId"]
    for i, az in enumerate(("a", "b")):
        sn = ec2.create_subnet(VpcId=out.vpc_id, CidrBlock=f"10.20.{i}.0/24",
                               AvailabilityZone=f"{out.region}{az}")["Subnet"]
        out.subnet_ids.append(sn["SubnetId"])

    def sg(name: str, desc: str, rules: list[dict[str, Any]], team: str = "platform") -> str:
        group_id = ec2.create_security_group(GroupName=name, Description=desc, VpcId=out.vpc_id,
                                             TagSpecifications=[{"ResourceType": "security-group",
                                                                 "Tags": _tags(Name=name, team=team)}])["GroupId"]
        if rules:
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=rules)
        out.security_groups[name] = group_id
        return group_id

    alb_sg = sg("alb-public", "Public HTTPS to load balancers", [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}], team="storefront")
    for svc in ("checkout", "catalog", "payments"):
        sg(f"{svc}-app", f"{svc} application servers", [
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
             "UserIdGroupPairs": [{"GroupId": alb_sg}]}], team=topo.services[svc].team)
    # Injected misconfigurations: SSH and RDP open to the world.
    sg("bastion-ssh", "Bastion SSH access", [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    sg("staging-windows-rdp", "Staging Windows build host", [
        {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    sg("db-internal", "Databases from app tier", [
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}])


def create_compute(clients: Any, topo: Topology, out: Created) -> None:
    ec2, asg = clients("ec2"), clients("autoscaling")
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    by_asg: dict[str, list] = {}
    for spec in topo.instances:
        if spec.asg:
            by_asg.setdefault(spec.asg, []).append(spec)
            continue
        svc = topo.services[spec.service]
        sg_name = {"platform-prod-bastion": "bastion-ssh"}.get(spec.name, f"{spec.service}-app")
        group = out.security_groups.get(sg_name, out.security_groups["bastion-ssh"])
        tags = _resource_tags(spec.name, spec.service, spec.env, svc.team, svc.owner, spec.protected,
                              aiops__schedule=spec.schedule, aiops__backup=spec.backup,
                              PatchGroup=spec.patch_group)
        inst = ec2.run_instances(
            ImageId=image_id, InstanceType=spec.instance_type, MinCount=1, MaxCount=1,
            SubnetId=out.subnet_ids[len(out.instances) % 2], SecurityGroupIds=[group],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 50, "VolumeType": "gp3"}}],
        )["Instances"][0]
        out.instances[spec.name] = inst["InstanceId"]

    for asg_name, specs in by_asg.items():
        first = specs[0]
        svc = topo.services[first.service]
        tags = _resource_tags(asg_name, first.service, first.env, svc.team, svc.owner, False,
                              PatchGroup=first.patch_group)
        ec2.create_launch_template(
            LaunchTemplateName=f"{asg_name}-lt",
            LaunchTemplateData={"ImageId": image_id, "InstanceType": first.instance_type,
                                "SecurityGroupIds": [out.security_groups[f"{first.service}-app"]]})
        asg.create_auto_scaling_group(
            AutoScalingGroupName=asg_name, LaunchTemplate={"LaunchTemplateName": f"{asg_name}-lt"},
            MinSize=len(specs), MaxSize=len(specs) * 3, DesiredCapacity=len(specs),
            VPCZoneIdentifier=",".join(out.subnet_ids),
            Tags=[{**t, "PropagateAtLaunch": True, "ResourceId": asg_name, "ResourceType": "auto-scaling-group"}
                  for t in tags])
        out.asg_names.append(asg_name)
        members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])[
            "AutoScalingGroups"][0]["Instances"]
        ids = sorted(m["InstanceId"] for m in members)
        for spec, instance_id in zip(specs, ids, strict=True):
            out.instances[spec.name] = instance_id
            ec2.create_tags(Resources=[instance_id], Tags=[t for t in tags if t["Key"] != "Name"]
                            + [{"Key": "Name", "Value": spec.name}])


def create_load_balancers(clients: Any, topo: Topology, out: Created) -> None:
    elb = clients("elbv2")
    for lb in topo.load_balancers:
        arn = elb.create_load_balancer(
            Name=lb.name, Subnets=out.subnet_ids, SecurityGroups=[out.security_groups["alb-public"]],
            Scheme="internet-facing", Type="application",
            Tags=_tags(Name=lb.name, env=lb.env, team=lb.team, service=",".join(lb.services)),
        )["LoadBalancers"][0]["LoadBalancerArn"]
        lb_dim = arn.split(":loadbalancer/")[1]
        out.load_balancers[lb.name] = {"arn": arn, "dimension": lb_dim}
        for svc_name in lb.services:
            svc = topo.services[svc_name]
            tg_name = f"{svc_name}-{lb.env}-tg"
            tg_arn = elb.create_target_group(
                Name=tg_name, Protocol="HTTP", Port=8080, VpcId=out.vpc_id, TargetType="instance",
                HealthCheckPath="/healthz",
                Tags=_tags(service=svc_name, env=lb.env, team=svc.team, owner=svc.owner),
            )["TargetGroups"][0]["TargetGroupArn"]
            targets = [out.instances[s.name] for s in topo.instances
                       if s.service == svc_name and s.env == lb.env and s.share > 0]
            if targets:
                elb.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": t, "Port": 8080} for t in targets])
            elb.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80 + len(out.target_groups),
                                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
            out.target_groups[f"{svc_name}/{lb.env}"] = {
                "arn": tg_arn, "dimension": tg_arn.split(":")[-1], "lb": lb.name, "lb_dimension": lb_dim}


def create_databases(clients: Any, topo: Topology, out: Created) -> None:
    rds = clients("rds")
    for db in topo.databases:
        svc = topo.services[db.service]
        resp = rds.create_db_instance(
            DBInstanceIdentifier=db.identifier, DBInstanceClass=db.instance_class, Engine="postgres",
            AllocatedStorage=100, MasterUsername="app", MasterUserPassword="not-a-real-password-1",
            StorageEncrypted=db.encrypted, PubliclyAccessible=db.public, StorageType="gp2",
            VpcSecurityGroupIds=[out.security_groups["db-internal"]],
            Tags=_resource_tags(db.identifier, db.service, db.env, svc.team, svc.owner, db.protected))
        out.databases[db.identifier] = resp["DBInstance"]["DBInstanceArn"]


def create_storage(clients: Any, topo: Topology, out: Created, anchor_iso: str, days_ago: Any) -> None:
    """EBS volumes (attached, unattached, gp2, unencrypted), snapshots (fresh and old), EIPs."""
    ec2 = clients("ec2")
    az = f"{out.region}a"

    def volume(label: str, size: int, vtype: str, encrypted: bool, service: str, env: str, team: str,
               attach_to: str | None = None, **extra: str) -> str:
        tags = _tags(Name=label, service=service, env=env, team=team, **extra)
        vol = ec2.create_volume(AvailabilityZone=az, Size=size, VolumeType=vtype, Encrypted=encrypted,
                                TagSpecifications=[{"ResourceType": "volume", "Tags": tags}])
        out.volumes[label] = vol["VolumeId"]
        if attach_to:
            ec2.attach_volume(VolumeId=vol["VolumeId"], InstanceId=out.instances[attach_to], Device="/dev/sdf")
        return vol["VolumeId"]

    volume("catalog-prod-search-data", 500, "gp2", True, "catalog", "prod", "storefront",
           attach_to="catalog-prod-search", aiops__backup="daily")
    volume("checkout-prod-web-1-cache", 100, "gp2", True, "checkout", "prod", "storefront",
           attach_to="checkout-prod-web-1")
    volume("payments-prod-ledger-data", 200, "gp3", True, "payments", "prod", "payments",
           attach_to="payments-prod-api-1", aiops__protected="true", aiops__backup="daily")
    # Waste: unattached volumes (one gp2), left behind by a migration two months ago.
    old_a = volume("catalog-old-index-2026q3", 750, "gp2", True, "catalog", "prod", "storefront")
    old_b = volume("ci-runner-scratch", 200, "gp3", True, "platform", "staging", "platform")
    # Misconfiguration: an unencrypted volume attached to the staging batch host.
    volume("catalog-staging-batch-data", 300, "gp2", False, "catalog", "staging", "storefront",
           attach_to="catalog-staging-batch")
    for vid, days in ((old_a, 64), (old_b, 41)):
        out.backdates.append({"kind": "ebs_volume", "id": vid, "time": days_ago(days)})

    # Snapshots: recent ones under the daily policy, old ones past any retention.
    for label, vol_label, days, keep in (
        ("catalog-search-daily-1", "catalog-prod-search-data", 1, False),
        ("catalog-search-daily-2", "catalog-prod-search-data", 2, False),
        ("catalog-search-2025-migration", "catalog-prod-search-data", 210, False),
        ("checkout-cache-2025-q4", "checkout-prod-web-1-cache", 380, False),
        ("payments-ledger-audit-2025", "payments-prod-ledger-data", 400, True),
    ):
        tags = _tags(Name=label, **({"aiops__keep": "true"} if keep else {}))
        snap = ec2.create_snapshot(VolumeId=out.volumes[vol_label], Description=label,
                                   TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
        out.snapshots[label] = snap["SnapshotId"]
        out.backdates.append({"kind": "ebs_snapshot", "id": snap["SnapshotId"], "time": days_ago(days)})

    # Elastic IPs: one in use by the bastion, two forgotten.
    for label, attach in (("bastion-eip", "platform-prod-bastion"), ("old-nat-eip", None),
                          ("promo-landing-eip", None)):
        alloc = ec2.allocate_address(Domain="vpc", TagSpecifications=[
            {"ResourceType": "elastic-ip", "Tags": _tags(Name=label, team="platform")}])
        out.elastic_ips[label] = alloc["AllocationId"]
        if attach:
            ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=out.instances[attach])


def create_buckets(clients: Any, out: Created) -> None:
    s3 = clients("s3")
    acct = out.account_id
    names = {
        "cloudtrail": f"matcarv-cloudtrail-{acct}",
        "public_assets": "matcarv-public-assets",
        "checkout_data": "matcarv-checkout-prod-data",
        "app_logs": f"matcarv-app-logs-{acct}",
    }
    for name in names.values():
        s3.create_bucket(Bucket=name)
    out.buckets.update(names)
    for role in ("checkout_data", "app_logs", "cloudtrail"):
        s3.put_bucket_encryption(Bucket=names[role], ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
        s3.put_public_access_block(Bucket=names[role], PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
    # TLS-only policy on the data bucket (a compliant example).
    s3.put_bucket_policy(Bucket=names["checkout_data"], Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{names['checkout_data']}", f"arn:aws:s3:::{names['checkout_data']}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    # Misconfiguration: public-read bucket policy, no block-public-access, no default encryption.
    s3.put_bucket_policy(Bucket=names["public_assets"], Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{names['public_assets']}/*"}]}))
    s3.put_bucket_policy(Bucket=names["cloudtrail"], Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{names['cloudtrail']}"},
            {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{names['cloudtrail']}/AWSLogs/{acct}/*",
             "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}]}))


def create_iam(clients: Any, out: Created, days_ago: Any) -> None:
    iam = clients("iam")
    acct = out.account_id
    iam.update_account_password_policy(MinimumPasswordLength=8, RequireSymbols=False, RequireNumbers=True,
                                       RequireUppercaseCharacters=True, RequireLowercaseCharacters=True,
                                       AllowUsersToChangePassword=True, MaxPasswordAge=365,
                                       PasswordReusePrevention=3)
    readonly = iam.create_policy(PolicyName="sre-read-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
            "ec2:Describe*", "cloudwatch:Get*", "cloudwatch:List*", "logs:Get*", "logs:FilterLogEvents",
            "rds:Describe*", "elasticloadbalancing:Describe*"], "Resource": "*"}]}))["Policy"]["Arn"]
    admin_star = iam.create_policy(PolicyName="legacy-full-admin", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        Description="Created 2024 for the migration; nobody remembers why")["Policy"]["Arn"]
    deploy = iam.create_policy(PolicyName="ci-deploy", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
            "ecs:UpdateService", "ecs:DescribeServices", "s3:PutObject"], "Resource": "*"}]}))["Policy"]["Arn"]
    iam.create_group(GroupName="sre")
    iam.attach_group_policy(GroupName="sre", PolicyArn=readonly)

    def user(name: str, *, console: bool, mfa: bool, key_age_days: int | None = None,
             key_last_used_days: int | None = None, group: str | None = None,
             direct_policy: str | None = None, team: str = "platform") -> None:
        iam.create_user(UserName=name, Tags=_tags(team=team))
        info: dict[str, Any] = {"arn": f"arn:aws:iam::{acct}:user/{name}", "console": console, "mfa": mfa}
        if console:
            iam.create_login_profile(UserName=name, Password="Sandbox-Only-Pa55word!")
        if mfa:
            dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
            iam.enable_mfa_device(UserName=name, SerialNumber=dev["SerialNumber"],
                                  AuthenticationCode1="123456", AuthenticationCode2="654321")
        if key_age_days is not None:
            key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
            info["access_key_id"] = key
            out.backdates.append({"kind": "iam_access_key", "id": key, "time": days_ago(key_age_days)})
            if key_last_used_days is not None:
                out.backdates.append({"kind": "iam_access_key_last_used", "id": key,
                                      "time": days_ago(key_last_used_days)})
        if group:
            iam.add_user_to_group(GroupName=group, UserName=name)
        if direct_policy:
            iam.attach_user_policy(UserName=name, PolicyArn=direct_policy)
        out.users[name] = info

    user("alice.sre", console=True, mfa=True, key_age_days=20, key_last_used_days=0, group="sre")
    user("carol.secops", console=True, mfa=True, group="sre", team="security")
    user("bob.builder", console=True, mfa=False, team="storefront", direct_policy=admin_star)  # no MFA
    user("ci-legacy", console=False, mfa=False, key_age_days=412, key_last_used_days=180,
         direct_policy=deploy)  # old, unused key
    user("ci-deployer", console=False, mfa=False, key_age_days=30, key_last_used_days=0)

    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    for role in ("checkout-app", "catalog-app", "payments-app"):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust, Tags=_tags(service=role.split("-")[0]))
    ssm_trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName="aiops-automation", AssumeRolePolicyDocument=ssm_trust,
                    Description="Assumed by SSM Automation runbooks started by MatCarv AIOps")


BOOTSTRAP_STACK = "matcarv-aiops-bootstrap"


def deploy_bootstrap_stack(clients: Any, topo: Topology, out: Created) -> None:
    """The platform's own resources come from the same bootstrap template users deploy
    (``infra/bootstrap.yaml``, :mod:`aiops.account.template`): roles and policies, artifact bucket,
    ``aiops-ops-events`` rule -> queue (+ DLQ), ``aiops-cloudtrail-files`` queue (+ DLQ), team topics,
    the SES sender. The seeded account already has its trail (``matcarv-org-trail``), so the stack is
    given that bucket and the trail's ObjectCreated notification is added by hand (as a user with an
    existing trail does: :func:`create_cloudtrail_notifications`). TLS-only bucket policies are off:
    the emulator is reached over plain http and enforces bucket policies."""
    import time

    from aiops.account.template import build_template, render_yaml
    from aiops.core.settings import get_settings

    cfn, sqs, sns = clients("cloudformation"), clients("sqs"), clients("sns")
    settings = get_settings()
    cfn.create_stack(
        StackName=BOOTSTRAP_STACK, TemplateBody=render_yaml(build_template(teams=topo.teams)),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in {
            "ArtifactBucketName": settings.artifact_bucket, "TrailBucketName": out.buckets["cloudtrail"],
            "SenderEmail": settings.email_sender, "EnforceTls": "false", "EnableSecurityHub": "true"}.items()])
    for _ in range(300):
        status = cfn.describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.2)
    if status != "CREATE_COMPLETE":
        raise RuntimeError(f"bootstrap stack ended {status}")
    arns = {t["TopicArn"].rsplit(":", 1)[-1]: t["TopicArn"] for t in sns.list_topics()["Topics"]}
    for team in topo.teams:
        out.topics[team] = arns[f"aiops-alerts-{team}"]
    out.queues.update({
        "ops_events": sqs.get_queue_url(QueueName="aiops-ops-events")["QueueUrl"],
        "ops_events_dlq": sqs.get_queue_url(QueueName="aiops-ops-events-dlq")["QueueUrl"],
        "cloudtrail_files": sqs.get_queue_url(QueueName="aiops-cloudtrail-files")["QueueUrl"],
    })
    ses = clients("ses")  # the recipients (the sender came from the stack), as a team would verify them
    ses.verify_domain_identity(Domain="matcarv.example")
    for address in ("finops@matcarv.example", "security@matcarv.example", "eng-managers@matcarv.example"):
        ses.verify_email_identity(EmailAddress=address)


def create_trail(clients: Any, out: Created) -> None:
    ct = clients("cloudtrail")
    out.trail_name = "matcarv-org-trail"
    ct.create_trail(Name=out.trail_name, S3BucketName=out.buckets["cloudtrail"], IsMultiRegionTrail=True,
                    EnableLogFileValidation=True, IncludeGlobalServiceEvents=True)
    ct.start_logging(Name=out.trail_name)


def create_cloudtrail_notifications(clients: Any, out: Created) -> None:
    """The trail bucket notifies the bootstrap stack's ``aiops-cloudtrail-files`` SQS queue of every
    new log file (S3 ObjectCreated -> SQS): what the ``security_events`` DAG's AssetWatcher listens to."""
    sqs, s3 = clients("sqs"), clients("s3")
    url = out.queues["cloudtrail_files"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bucket = out.buckets["cloudtrail"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [{
        "Id": "aiops-cloudtrail-files", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "AWSLogs/"},
                                           {"Name": "suffix", "Value": ".json.gz"}]}}}]})


def create_log_groups(clients: Any, topo: Topology, out: Created) -> None:
    logs = clients("logs")
    for svc in ("checkout", "catalog", "payments"):
        for env in ("prod", "staging"):
            name = f"/matcarv/{svc}/{env}/application"
            retention = {("checkout", "prod"): 30, ("payments", "prod"): 365}.get((svc, env))
            logs.create_log_group(logGroupName=name, tags={"service": svc, "env": env,
                                                           "team": topo.services[svc].team})
            if retention:
                logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
            out.log_groups[name] = retention
    for name, retention in (("/aws/rds/instance/checkout-prod-db/postgresql", 7),
                            ("/matcarv/platform/prod/bastion-audit", None)):
        logs.create_log_group(logGroupName=name)
        if retention:
            logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
        out.log_groups[name] = retention


def create_ops_fixtures(clients: Any, out: Created, days_ago: Any) -> None:
    """Routine operations (issue 9): the history the snapshot lifecycle inherits. Snapshots the
    ``daily-backups`` policy made of the catalog search volume over the past days (some past its
    7-day retention), one of them tagged to keep, and a golden AMI whose snapshot the policy made
    30 days ago (must never expire). Additive: no random draws, existing resources untouched."""
    ec2 = clients("ec2")
    volume = out.volumes["catalog-prod-search-data"]
    policy = "daily-backups"

    def managed_tags(age: int, keep: bool = False) -> list[dict[str, str]]:
        day = days_ago(age)[:10]
        tags = {"Name": f"catalog-prod-search-data-{day}", "service": "catalog", "env": "prod",
                "team": "storefront", "aiops:backup": "daily", "aiops:snapshot-policy": policy,
                "aiops:snapshot-key": f"{policy}/{volume}/{day}", "aiops:created-by": "ops_snapshots",
                "aiops:retention-days": "7"}
        if keep:
            tags["aiops:keep"] = "true"
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    managed: dict[str, str] = {}
    for age, keep in ((3, False), (6, False), (9, False), (12, False), (20, True)):
        snap = ec2.create_snapshot(VolumeId=volume, Description=f"{policy} {days_ago(age)[:10]}",
                                   TagSpecifications=[{"ResourceType": "snapshot", "Tags": managed_tags(age, keep)}])
        managed[f"{age}d"] = snap["SnapshotId"]
        out.backdates.append({"kind": "ebs_snapshot", "id": snap["SnapshotId"], "time": days_ago(age)})
    image = ec2.register_image(Name="catalog-search-golden-2026-10", RootDeviceName="/dev/xvda",
                               Description="Golden image of the catalog search host",
                               VirtualizationType="hvm", Architecture="x86_64")["ImageId"]
    ami_snapshot = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.create_tags(Resources=[ami_snapshot], Tags=managed_tags(30))
    out.backdates.append({"kind": "ebs_snapshot", "id": ami_snapshot, "time": days_ago(30)})
    out.ops = {
        "snapshot_policy": policy, "retention_days": 7, "search_volume": volume,
        "managed_snapshots": managed,
        "expired_by_policy": [managed["9d"], managed["12d"]],
        "kept_snapshot": managed["20d"],
        "ami": image, "ami_snapshot": ami_snapshot,
    }
