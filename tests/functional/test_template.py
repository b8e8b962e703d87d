"""template.yaml is a valid SAM template and says what the library expects: offline, no credentials.

The SAM transform runs in-process (aws-sam-translator) and cfn-lint checks the CloudFormation it
produces, which is where a dangling ``!Ref``/``!GetAtt`` shows up. The remaining tests read the
transformed template: handlers, API auth per route, logging, the table, IAM wildcards.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("samtranslator", reason="needs aws-sam-translator (test-only dependency)")
pytest.importorskip("cfnlint", reason="needs cfn-lint (test-only dependency)")

from tests.support.sam_offline import describe, lint, load_template, transform_template  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

FUNCTIONS = ("api", "webhook", "agent", "skill", "http", "code", "approval", "control", "events")
# Functions with Lambda SnapStart (their init imports a heavy SDK; see benchmarks/coldstart.py).
SNAPSTART = ("agent",)

ROUTES = {
    ("put", "/workflows/{name}"), ("get", "/workflows/{name}"), ("delete", "/workflows/{name}"),
    ("get", "/workflows"), ("post", "/workflows/{name}/runs"), ("get", "/workflows/{name}/runs"),
    ("get", "/runs/{run_id}"), ("post", "/runs/{run_id}/cancel"), ("post", "/runs/{run_id}/redrive"),
    ("get", "/approvals"), ("get", "/approvals/{approval_id}"), ("post", "/approvals/{approval_id}/decision"),
    ("get", "/openapi.json"), ("post", "/hooks/{path+}"),
    ("get", "/approve/{approval_id}"), ("post", "/approve/{approval_id}"),
}
WEBHOOK_ROUTE = ("post", "/hooks/{path+}")
# Open to browsers without SigV4; each function checks its own credential (a signature, a link key).
OPEN_ROUTES = {WEBHOOK_ROUTE, ("get", "/approve/{approval_id}"), ("post", "/approve/{approval_id}")}

# Actions IAM cannot scope to a resource, so "*" is the only possible Resource (checked below
# against cfn-lint's copy of the Service Authorization Reference): X-Ray, CloudWatch Logs
# delivery, and answering task tokens (the token itself is the capability).
WILDCARD_ACTIONS = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "states:SendTaskSuccess", "states:SendTaskFailure",
}

# cfn-lint warnings reviewed and accepted (rule id -> reason). Errors are never accepted.
ACCEPTED_WARNINGS: dict[str, str] = {}


def _fn_name(name: str) -> str:
    return f"{name.capitalize()}Function"


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return transform_template(TEMPLATE)


@pytest.fixture(scope="module")
def resources(cfn: dict[str, Any]) -> dict[str, Any]:
    return cfn["Resources"]


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def _render(value: Any) -> Any:
    """A Ref/GetAtt/Sub value as one string with ``${...}`` placeholders (nested Subs inlined)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else sub
        for name, inner in variables.items():
            text = text.replace(f"${{{name}}}", _render(inner))
        return text
    if isinstance(value, dict) and "Ref" in value:
        return f"${{{value['Ref']}}}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return value


FUNCTION_ARN = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-"


# ---------------------------------------------------------------------------- validity


def test_transformed_template_lints_clean(cfn: dict[str, Any]) -> None:
    matches = lint(cfn)
    errors = [describe(m) for m in matches if m.rule.id.startswith("E")]
    unreviewed = [describe(m) for m in matches
                  if m.rule.id.startswith("W") and m.rule.id not in ACCEPTED_WARNINGS]
    assert not errors, "cfn-lint errors:\n" + "\n".join(errors)
    assert not unreviewed, "new cfn-lint warnings (fix, or accept in ACCEPTED_WARNINGS):\n" + "\n".join(unreviewed)


def test_lint_sees_a_dangling_reference_inside_a_serverless_resource(tmp_path: Path) -> None:
    """The check above is not vacuous: a typo in a SAM policy template's table is caught."""
    broken = tmp_path / "template.yaml"
    text = TEMPLATE.read_text().replace("- DynamoDBCrudPolicy: {TableName: !Ref Table}",
                                        "- DynamoDBCrudPolicy: {TableName: !Ref Tabel}", 1)
    assert "Tabel" in text
    broken.write_text(text)
    rule_ids = {m.rule.id for m in lint(transform_template(broken))}
    assert "E1020" in rule_ids


# ---------------------------------------------------------------------------- functions


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_is_a_shim_over_the_layer_handler(name: str, resources: dict[str, Any],
                                                   sam: dict[str, Any]) -> None:
    props = sam["Resources"][_fn_name(name)]["Properties"]
    assert props["CodeUri"] == f"functions/{name}/"
    assert props["Handler"] == "app.lambda_handler"
    assert resources[_fn_name(name)]["Properties"]["Layers"] == [
        {"Ref": next(k for k in resources if k.startswith("CoreLayer"))}
    ]

    tree = ast.parse((ROOT / "functions" / name / "app.py").read_text())
    imports = [(node.module, [a.name for a in node.names]) for node in tree.body
               if isinstance(node, ast.ImportFrom)]
    assert imports == [(f"boternity.handlers.{name}", ["lambda_handler"])]


def test_every_function_resource_is_listed(resources: dict[str, Any]) -> None:
    assert set(_of_type(resources, "AWS::Lambda::Function")) == {_fn_name(n) for n in FUNCTIONS}


def test_every_function_knows_the_table_and_bucket(resources: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        env = resources[_fn_name(name)]["Properties"]["Environment"]["Variables"]
        assert env["BOTERNITY_TABLE"] == {"Ref": "Table"}, name
        assert env["BOTERNITY_BUCKET"] == {"Ref": "Bucket"}, name


def test_api_function_gets_the_arn_of_every_step_function(resources: dict[str, Any]) -> None:
    from boternity.compiler.targets import FUNCTIONS as STEP_FUNCTIONS

    env = resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
    for var in ("BOTERNITY_STATE_MACHINE_ROLE_ARN", "BOTERNITY_STATE_MACHINE_PREFIX", "BOTERNITY_SCHEDULER_GROUP",
                "BOTERNITY_SCHEDULER_ROLE_ARN", "BOTERNITY_EVENT_BUS", "BOTERNITY_WEBHOOK_BASE_URL"):
        assert var in env, var
    arns = json.loads(_render(env["BOTERNITY_FUNCTION_ARNS"]))
    # SnapStart functions are invoked through their published alias, the others by name.
    assert arns == {k: FUNCTION_ARN + k + (f":{SNAPSTART_ALIAS}" if k in SNAPSTART else "") for k in STEP_FUNCTIONS}


def test_triggers_target_the_webhook_function_by_its_own_name(resources: dict[str, Any]) -> None:
    # The library would derive it from the agent's ARN ("...-agent" -> "...-webhook"), which an alias
    # ARN ("...-agent:live") defeats: cron, event and file triggers would have no target.
    env = resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert _render(env["BOTERNITY_TRIGGER_FUNCTION_ARN"]) == FUNCTION_ARN + "webhook"


def test_function_names_match_the_arns_handed_out(resources: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        assert _render(resources[_fn_name(name)]["Properties"]["FunctionName"]) == "${AWS::StackName}-" + name


def test_state_machines_may_invoke_exactly_the_step_functions(resources: dict[str, Any]) -> None:
    from boternity.compiler.targets import FUNCTIONS as STEP_FUNCTIONS

    statements = _statements(resources["StateMachineRole"])
    (invoke,) = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    arns = {_render(r) for r in invoke["Resource"]}
    assert arns == {FUNCTION_ARN + k + suffix for k in STEP_FUNCTIONS for suffix in ("", ":*")}


# ---------------------------------------------------------------------------- SnapStart

SNAPSTART_ALIAS = "live"


def _snapstart_functions(resources: dict[str, Any]) -> set[str]:
    return {k.removesuffix("Function").lower() for k, r in _of_type(resources, "AWS::Lambda::Function").items()
            if r["Properties"].get("SnapStart")}


def test_snapstart_is_on_exactly_where_the_cold_start_benchmark_says_it_pays(resources: dict[str, Any]) -> None:
    from benchmarks.coldstart import SNAPSTART as MEASURED_WORTH_IT

    assert _snapstart_functions(resources) == set(SNAPSTART) == set(MEASURED_WORTH_IT)
    for name in SNAPSTART:
        assert resources[_fn_name(name)]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}


@pytest.mark.parametrize("name", SNAPSTART)
def test_a_snapstart_function_is_invoked_through_an_alias_of_a_published_version(
        name: str, resources: dict[str, Any]) -> None:
    # Lambda snapshots published versions only; $LATEST (the bare function name) always initialises.
    (alias,) = [r["Properties"] for r in _of_type(resources, "AWS::Lambda::Alias").values()
                if r["Properties"]["FunctionName"] == {"Ref": _fn_name(name)}]
    assert alias["Name"] == SNAPSTART_ALIAS
    version_id = alias["FunctionVersion"]["Fn::GetAtt"][0]
    assert resources[version_id]["Type"] == "AWS::Lambda::Version"
    # Replaced versions go: a retained one would keep its snapshot cached and billed.
    assert resources[version_id]["DeletionPolicy"] == "Delete"
    assert resources[version_id]["Properties"]["FunctionName"] == {"Ref": _fn_name(name)}
    # ... and the state machines may invoke that alias (the role grants "<function>:*").
    role_arns = {_render(r) for s in _statements(resources["StateMachineRole"])
                 if s["Action"] == "lambda:InvokeFunction" for r in s["Resource"]}
    assert FUNCTION_ARN + name + ":*" in role_arns


def test_functions_without_snapstart_publish_no_versions(resources: dict[str, Any]) -> None:
    # A version per deploy without a snapshot would only be clutter (and a 75 GB code-storage quota).
    versioned = {r["Properties"]["FunctionName"]["Ref"] for r in _of_type(resources, "AWS::Lambda::Version").values()}
    assert versioned == {_fn_name(n) for n in SNAPSTART}


def test_snapstart_functions_use_nothing_snapstart_refuses(sam: dict[str, Any], resources: dict[str, Any]) -> None:
    # https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html: Python 3.12 and later; no
    # provisioned concurrency, no EFS, no ephemeral storage over 512 MB.
    runtime = sam["Globals"]["Function"]["Runtime"]
    assert re.fullmatch(r"python3\.(\d+)", runtime) and int(runtime.split(".")[1]) >= 12, runtime
    for name in SNAPSTART:
        props = resources[_fn_name(name)]["Properties"]
        assert props.get("Runtime") == runtime, name
        assert "FileSystemConfigs" not in props, name
        assert props.get("EphemeralStorage", {"Size": 512})["Size"] <= 512, name
        assert "ProvisionedConcurrencyConfig" not in sam["Resources"][_fn_name(name)]["Properties"], name


def test_a_configuration_change_publishes_a_new_version_and_so_a_new_snapshot(
        resources: dict[str, Any], tmp_path: Path) -> None:
    # Without AutoPublishAliasAllProperties SAM publishes only on a code change: a new memory size,
    # environment or layer would keep being served from the old snapshot.
    changed = tmp_path / "template.yaml"
    text = TEMPLATE.read_text().replace("MemorySize: 1024              # more memory is more CPU for the SDK",
                                        "MemorySize: 2048              # more memory is more CPU for the SDK", 1)
    assert text != TEMPLATE.read_text()
    changed.write_text(text)
    before = {k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Version"}
    after = {k for k, r in transform_template(changed)["Resources"].items() if r["Type"] == "AWS::Lambda::Version"}
    assert before and after and not before & after


def test_the_agent_handler_imports_its_sdk_at_init_so_the_snapshot_holds_it() -> None:
    # SnapStart snapshots what init ran: an SDK imported inside the handler would be imported again
    # after every restore. A fresh interpreter, so nothing is imported already.
    import subprocess
    import sys

    code = "import sys, boternity.handlers.agent; print('anthropic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "True"


def test_approval_function_may_publish_to_the_approval_topic_only(resources: dict[str, Any]) -> None:
    from boternity.notify import TOPIC_ENV

    env = resources["ApprovalFunction"]["Properties"]["Environment"]["Variables"]
    assert env[TOPIC_ENV] == {"Ref": "ApprovalTopic"}
    topic = resources["ApprovalTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == "alias/aws/sns", "announcements carry prompts: encrypt them at rest"
    publish = [s for s in _statements(resources["ApprovalFunctionRole"])
               if "sns:Publish" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert publish, "the approval function cannot publish"
    for s in publish:
        resources_ = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        assert all("ApprovalTopic" in json.dumps(r) for r in resources_), resources_


# ---------------------------------------------------------------------------- API


def test_webhook_and_approval_link_routes_are_open_and_every_other_route_needs_iam(resources: dict[str, Any]) -> None:
    body = resources["Api"]["Properties"]["Body"]
    routes = {(method, path): op.get("security") for path, ops in body["paths"].items()
              for method, op in ops.items()}
    assert set(routes) == ROUTES
    for route in OPEN_ROUTES:
        assert routes.pop(route) in (None, [], [{"NONE": []}]), route
    assert all(security == [{"AWS_IAM": []}] for security in routes.values()), routes


def test_every_route_invokes_its_function_with_the_apis_own_permission(resources: dict[str, Any]) -> None:
    # With the caller's credentials (SAM's default for AWS_IAM), a client allowed only
    # execute-api:Invoke gets 500 "Invalid permissions on Lambda function".
    body = resources["Api"]["Properties"]["Body"]
    for path, ops in body["paths"].items():
        for method, op in ops.items():
            assert "credentials" not in op["x-amazon-apigateway-integration"], (method, path)
    permitted = {_render(p["Properties"]["FunctionName"]) for p in _of_type(resources, "AWS::Lambda::Permission").values()
                 if p["Properties"]["Principal"] == "apigateway.amazonaws.com"}
    assert {"${ApiFunction}", "${WebhookFunction}"} <= permitted


def _when(conditions: dict[str, bool], value: Any) -> Any:
    """Resolve Fn::If against known condition values."""
    if isinstance(value, dict) and "Fn::If" in value:
        name, yes, no = value["Fn::If"]
        return _when(conditions, yes if conditions[name] else no)
    return value


def test_the_first_deploy_needs_no_api_gateway_logging_role(cfn: dict[str, Any], sam: dict[str, Any]) -> None:
    # Logs need the account-wide CloudWatch role; a stage asking for them without it fails and the
    # stack rolls back. Off by default; on when the stack is told the role exists or creates it.
    assert sam["Parameters"]["ApiLogging"]["Default"] == "off"
    (stage,) = _of_type(cfn["Resources"], "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    off, on = {"ApiLoggingOn": False}, {"ApiLoggingOn": True}
    assert _when(off, props["AccessLogSetting"]) == {"Ref": "AWS::NoValue"}
    assert {_when(off, m["LoggingLevel"]) for m in props["MethodSettings"]} == {"OFF"}
    assert _when(on, props["AccessLogSetting"])["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert {_when(on, m["LoggingLevel"]) for m in props["MethodSettings"]} == {"ERROR"}
    assert cfn["Conditions"]["ApiLoggingOn"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApiLogging"}, "off"]}]}
    assert cfn["Resources"]["ApiAccessLogGroup"]["Condition"] == "ApiLoggingOn"


def test_a_created_account_logging_role_outlives_the_stack(sam: dict[str, Any]) -> None:
    # The setting is account-wide: deleting the stack must not leave it pointing at a deleted role.
    for name in ("ApiGatewayCloudWatchRole", "ApiGatewayAccount"):
        resource = sam["Resources"][name]
        assert resource["Condition"] == "CreateApiGatewayAccountRole"
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def test_data_tracing_is_off_and_access_logs_hold_no_request_path(resources: dict[str, Any]) -> None:
    (stage,) = _of_type(resources, "AWS::ApiGateway::Stage").values()
    settings = stage["Properties"]["MethodSettings"]
    assert settings and all(s["DataTraceEnabled"] is False for s in settings)
    assert any(s["ResourcePath"] == "/*" and s["HttpMethod"] == "*" for s in settings)
    assert stage["Properties"]["TracingEnabled"] is True
    log_format = _when({"ApiLoggingOn": True}, stage["Properties"]["AccessLogSetting"])["Format"]
    assert "$context.resourcePath" in log_format
    assert "$context.path" not in log_format  # a webhook path may carry a secret


# ---------------------------------------------------------------------------- storage


def test_table_matches_the_run_store(resources: dict[str, Any]) -> None:
    from boternity.store.run_records import table_definition

    props = resources["Table"]["Properties"]
    expected = table_definition("any")
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == expected["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    (gsi,) = props["GlobalSecondaryIndexes"]
    (expected_gsi,) = expected["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1"
    assert gsi["KeySchema"] == expected_gsi["KeySchema"]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_bucket_is_private_and_expires_run_outputs(resources: dict[str, Any]) -> None:
    props = resources["Bucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = props["LifecycleConfiguration"]["Rules"]
    assert {"Prefix": "runs/", "ExpirationInDays": {"Ref": "RecordRetentionDays"}}.items() <= next(
        r for r in rules if r.get("Prefix") == "runs/").items()


def test_every_function_keeps_run_records_as_long_as_the_retention_parameter(
        resources: dict[str, Any], sam: dict[str, Any]) -> None:
    assert sam["Parameters"]["RecordRetentionDays"]["Default"] == 90
    for name in FUNCTIONS:
        env = resources[_fn_name(name)]["Properties"]["Environment"]["Variables"]
        assert env["BOTERNITY_RECORD_RETENTION_DAYS"] == {"Ref": "RecordRetentionDays"}, name


# ---------------------------------------------------------------------------- events


def test_status_changes_of_our_machines_reach_the_events_function(resources: dict[str, Any]) -> None:
    (rule,) = _of_type(resources, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    (prefix,) = pattern["detail"]["stateMachineArn"]
    assert prefix["prefix"]["Fn::Sub"].endswith(":stateMachine:${StateMachinePrefix}")
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["EventsFunction", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["StatusChangeDeadLetterQueue", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


# ---------------------------------------------------------------------------- IAM


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    props = resource["Properties"]
    docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
    if "PolicyDocument" in props:
        docs.append(props["PolicyDocument"])
    return [s for d in docs for s in d["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(resources: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role = resources[_fn_name(function)]["Properties"]["Role"]["Fn::GetAtt"][0]
    return [st for st in _statements(resources[role]) if st["Effect"] == "Allow"]


def test_the_api_function_may_touch_only_run_blobs_in_the_bucket(resources: dict[str, Any]) -> None:
    # bots/ and skills/ hold what other steps execute; the API only claim-checks run payloads.
    s3 = [(a, _render(r)) for st in _role_statements(resources, "api") for a in _as_list(st["Action"])
          if a.startswith("s3:") for r in _as_list(st["Resource"])]
    objects = {a for a, r in s3 if r.endswith("/*")}
    assert objects == {"s3:GetObject", "s3:PutObject"}
    assert {r for a, r in s3 if r.endswith("/*")} == {"${Bucket.Arn}/runs/*"}
    assert {a for a, r in s3 if not r.endswith("/*")} == {"s3:PutBucketNotification", "s3:GetBucketNotification"}


# Granted once, called by no code path (checked by grepping the library for the boto3 calls).
UNUSED_ACTIONS = {"states:ListExecutions", "scheduler:GetSchedule",
                  "events:DescribeRule", "events:ListTargetsByRule", "states:SendTaskFailure"}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_no_function_holds_a_grant_its_code_never_uses(name: str, resources: dict[str, Any]) -> None:
    granted = {a for st in _role_statements(resources, name) for a in _as_list(st["Action"])}
    assert not granted & UNUSED_ACTIONS


def test_the_unused_actions_really_are_unused() -> None:
    calls = {"states:ListExecutions": "list_executions", "scheduler:GetSchedule": "get_schedule", "events:DescribeRule": "describe_rule",
             "events:ListTargetsByRule": "list_targets_by_rule",
             "states:SendTaskFailure": "send_task_failure"}
    library = ROOT / "layers" / "core" / "boternity"
    for path in library.rglob("*.py"):
        if {"local", "cli"} & set(path.relative_to(library).parts):
            continue  # not deployed (see layers/core/Makefile)
        text = path.read_text()
        for action, call in calls.items():
            assert f".{call}(" not in text and f'"{call}"' not in text, (action, path)


def test_the_layer_ships_neither_the_local_engine_nor_the_cli_nor_the_console(sam: dict[str, Any]) -> None:
    assert sam["Resources"]["CoreLayer"]["Metadata"]["BuildMethod"] == "makefile"
    makefile = (ROOT / "layers" / "core" / "Makefile").read_text()
    left_out = ("local", "cli", "console")
    assert all(f"--exclude=boternity/{unit}" in makefile for unit in left_out)
    assert '"$(ARTIFACTS_DIR)/python"' in makefile
    library = ROOT / "layers" / "core" / "boternity"
    for path in library.rglob("*.py"):
        if set(left_out) & set(path.relative_to(library).parts):
            continue
        tree = ast.parse(path.read_text())
        prefixes = tuple(f"boternity.{unit}" for unit in left_out)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(prefixes), path
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith(prefixes) for a in node.names), path


def test_wildcard_resources_only_for_actions_iam_cannot_scope(resources: dict[str, Any]) -> None:
    offending = []
    for logical_id, resource in resources.items():
        if resource["Type"] not in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            continue
        for s in _statements(resource):
            if s["Effect"] == "Allow" and "*" in _as_list(s.get("Resource")):
                offending += [f"{logical_id}: {a}" for a in _as_list(s["Action"]) if a not in WILDCARD_ACTIONS]
    assert not offending, offending


def test_the_wildcard_actions_really_have_no_resource_type() -> None:
    import cfnlint

    spec = json.loads((Path(cfnlint.__file__).parent / "data/AdditionalSpecs/Policies.json").read_text())
    scoped = [a for a in WILDCARD_ACTIONS
              if spec[a.split(":")[0]]["Actions"][a.split(":")[1].lower()].get("Resources")]
    assert not scoped, f"these actions can be scoped to a resource: {scoped}"


def test_machine_and_execution_grants_stay_under_the_prefix(resources: dict[str, Any]) -> None:
    arn_re = re.compile(r"^arn:\$\{AWS::Partition\}:states:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
                        r"(stateMachine:\$\{StateMachinePrefix\}\*|execution:\$\{StateMachinePrefix\}\*:\*)$")
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for s in _statements(resource):
            states_actions = [a for a in _as_list(s["Action"]) if a.startswith("states:")]
            if not states_actions or "*" in _as_list(s.get("Resource")):
                continue
            for r in _as_list(s["Resource"]):
                assert arn_re.match(_render(r)), f"{logical_id} {states_actions}: {_render(r)}"


# ---------------------------------------------------------------------------- build config


def _pins(path: Path) -> set[str]:
    return {line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (extras and version dropped)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return canonicalize_name(Requirement(requirement).name)


def test_deployed_pins_are_the_tested_versions_within_pyprojects_ranges() -> None:
    """Every runtime dependency ships in the layer or in the one function that needs it, pinned to
    the version constraints.txt tests (boto3 comes from the Lambda runtime), and that version is
    inside the range pyproject.toml declares."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = {_name(d): Requirement(d) for d in [*project["dependencies"], *extras["agent"], *extras["skill"]]
                if _name(d) != "boto3"}
    tested = {_name(p): p.split("==", 1)[1] for p in _pins(ROOT / "constraints.txt")}
    files = [ROOT / "layers/core/requirements.txt", *sorted((ROOT / "functions").glob("*/requirements.txt"))]
    shipped = set().union(*(_pins(f) for f in files))
    assert {_name(p) for p in shipped} == set(declared), "the deployed packages are pyproject.toml's"
    for pin in shipped:
        name, version = _name(pin), pin.split("==", 1)[1]
        assert version == tested[name], f"{pin}: constraints.txt tests {name} {tested[name]}"
        assert declared[name].specifier.contains(version), f"{pin} is outside pyproject.toml's {declared[name]}"
    assert {_name(d) for d in extras["agent"]} <= {_name(p) for p in _pins(ROOT / "functions/agent/requirements.txt")}


def test_samconfig_environments() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    for env in ("default", "dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM CAPABILITY_AUTO_EXPAND", env
        assert deploy["resolve_s3"] is True, env
        assert "use_container" not in config[env].get("build", {}).get("parameters", {}), env
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert "Stage=prod" in config["prod"]["deploy"]["parameters"]["parameter_overrides"].split()


def test_each_environment_has_a_state_machine_prefix_no_other_one_overlaps() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    pattern = re.compile(load_template(TEMPLATE)["Parameters"]["StateMachinePrefix"]["AllowedPattern"])
    prefixes = {}
    for env in ("default", "dev", "prod"):
        overrides = dict(o.split("=", 1) for o in config[env]["deploy"]["parameters"]["parameter_overrides"].split())
        prefixes[env] = overrides["StateMachinePrefix"]
        assert pattern.fullmatch(prefixes[env]), env
        assert len(prefixes[env]) + 64 <= 80, "a 64-character workflow name must still fit"
    assert len(set(prefixes.values())) == len(prefixes)
    # The grants and the status rule match "<prefix>*": no prefix may begin another's machine names.
    for a in prefixes.values():
        for b in prefixes.values():
            assert a == b or not (b + "wf").startswith(a), (a, b)


@pytest.mark.parametrize("prefix", ["boternity-", "boternity_x_", "a" * 16 + "_", "", "bo ter_"])
def test_prefixes_that_could_overlap_or_overflow_are_refused(prefix: str) -> None:
    pattern = re.compile(load_template(TEMPLATE)["Parameters"]["StateMachinePrefix"]["AllowedPattern"])
    assert not pattern.fullmatch(prefix)


# ---------------------------------------------------------------------------- secrets

SECRET_ARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
WORKFLOW_SECRETS = "${AWS::StackName}/workflows/"
# Who may read which secret: the functions that render workflow secrets ({{ secrets.NAME }} in an
# http step, a webhook's auth.secret_name) read the workflow-secrets prefix and nothing else; the
# agent function reads the Anthropic key and nothing else; every other function reads no secret.
SECRET_READERS = {
    "HttpFunctionRole": {SECRET_ARN + WORKFLOW_SECRETS + "*"},
    "WebhookFunctionRole": {SECRET_ARN + WORKFLOW_SECRETS + "*"},
    "AgentFunctionRole": {SECRET_ARN + "${AnthropicSecretName}-??????"},
}


def _secret_grants(resources: dict[str, Any]) -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] not in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            continue
        for s in _statements(resource):
            if s["Effect"] == "Allow" and any(a.startswith("secretsmanager:") or a == "*"
                                              for a in _as_list(s["Action"])):
                grants.setdefault(logical_id, set()).update(_render(r) for r in _as_list(s["Resource"]))
    return grants


def test_each_function_reads_only_its_own_secrets(resources: dict[str, Any]) -> None:
    assert _secret_grants(resources) == SECRET_READERS


def test_secret_reading_functions_are_told_the_prefix_they_may_read(resources: dict[str, Any]) -> None:
    from boternity.runtime.secrets import SECRET_PREFIX_ENV

    for name in ("HttpFunction", "WebhookFunction"):
        env = resources[name]["Properties"]["Environment"]["Variables"]
        assert _render(env[SECRET_PREFIX_ENV]) == WORKFLOW_SECRETS, name
    others = [n for n, r in _of_type(resources, "AWS::Lambda::Function").items()
              if SECRET_PREFIX_ENV in r["Properties"].get("Environment", {}).get("Variables", {})]
    assert sorted(others) == ["HttpFunction", "WebhookFunction"]


def test_the_default_local_prefix_is_the_default_stacks(sam: dict[str, Any]) -> None:
    from boternity.runtime.secrets import DEFAULT_SECRET_PREFIX

    stack = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]["global"]["parameters"]["stack_name"]
    assert WORKFLOW_SECRETS.replace("${AWS::StackName}", stack) == DEFAULT_SECRET_PREFIX


@pytest.mark.parametrize(("name", "allowed"), [
    ("boternity/anthropic", True),
    ("team/llm/anthropic-key", True),
    ("boternity/workflows/anthropic", False),
    ("boternity-prod/workflows/ANTHROPIC", False),
])
def test_the_anthropic_key_can_never_sit_among_workflow_secrets(sam: dict[str, Any], name: str,
                                                                allowed: bool) -> None:
    param = sam["Parameters"]["AnthropicSecretName"]
    pattern = re.compile(param["AllowedPattern"])
    assert pattern.fullmatch(param["Default"])
    assert bool(pattern.fullmatch(name)) is allowed


# ---------------------------------------------------------------------------- observability


def test_the_failed_runs_alarm_watches_the_metric_the_events_function_writes(resources: dict[str, Any]) -> None:
    from boternity import metrics

    alarm = resources["FailedRunsAlarm"]["Properties"]
    watched = {q["MetricStat"]["Metric"]["MetricName"]: q["MetricStat"]["Metric"]
               for q in alarm["Metrics"] if "MetricStat" in q}
    assert set(watched) == {metrics.RUN_END_METRICS["FAILED"], metrics.RUN_END_METRICS["TIMED_OUT"]}
    for metric in watched.values():
        assert metric["Namespace"] == metrics.NAMESPACE
        # the all-workflows series: only the service dimension Powertools adds from the environment
        assert metric["Dimensions"] == [{"Name": "service", "Value": "boternity"}]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_every_function_writes_metrics_under_the_namespace_and_service_the_alarms_read(
        resources: dict[str, Any]) -> None:
    from boternity import metrics

    for name, fn in _of_type(resources, "AWS::Lambda::Function").items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == metrics.NAMESPACE, name
        assert env["POWERTOOLS_SERVICE_NAME"] == "boternity", name
        assert fn["Properties"]["TracingConfig"] == {"Mode": "Active"}, name


def test_parked_status_events_and_throttles_raise_alarms(resources: dict[str, Any]) -> None:
    dlq = resources["StatusChangeDeadLetterAlarm"]["Properties"]
    assert dlq["Namespace"] == "AWS/SQS" and dlq["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["StatusChangeDeadLetterQueue",
                                                                              "QueueName"]}}]
    throttles = resources["ThrottlesAlarm"]["Properties"]["Metrics"]
    watched = {q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"] for q in throttles if "MetricStat" in q}
    assert watched == set(_of_type(resources, "AWS::Lambda::Function")), "every function, no other"
    assert all(q["MetricStat"]["Metric"]["MetricName"] == "Throttles" for q in throttles if "MetricStat" in q)


def test_the_dashboard_is_valid_json_showing_runs_steps_approvals_and_the_alarms(resources: dict[str, Any]) -> None:
    import json

    body = _render(resources["Dashboard"]["Properties"]["DashboardBody"])
    widgets = json.loads(body)["widgets"]
    text = json.dumps(widgets)
    for metric in ("RunsStarted", "RunsFailed", "StepDuration", "StepAttempts", "ApprovalsRequested",
                   "ApprovalsClosed", "ApproximateNumberOfMessagesVisible"):
        assert metric in text, metric
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    assert alarms["properties"]["alarms"] == ["${FailedRunsAlarm.Arn}", "${StatusChangeDeadLetterAlarm.Arn}",
                                              "${ThrottlesAlarm.Arn}"]
