"""docker-compose.yaml, the Dockerfile and the postgres init script, checked by parsing them: no
Docker engine runs on our machines, so ``docker compose config`` is not available here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
INIT_SQL = REPO / "docker" / "postgres" / "init-aiops-state.sql"
ENV_EXAMPLE = REPO / ".env.example"

AIRFLOW_SERVICES = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
]
# Services built on the x-airflow-common anchor, including the optional ones.
COMMON_SERVICES = [*AIRFLOW_SERVICES, "airflow-cli", "flower"]
REQUIRED_SERVICES = ["postgres", "redis", *AIRFLOW_SERVICES, "flower", "sandbox"]

_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def _with_defaults(value: str) -> str:
    """What compose substitutes with no .env and a clean environment: ``${X:-d}`` -> ``d``."""
    return _INTERPOLATION.sub(lambda m: m.group("default") or "", str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def common_env(compose: dict[str, Any]) -> dict[str, str]:
    return compose["x-airflow-common"]["environment"]


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of the service's bind mounts (short syntax, relative host path)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            mounts.append((source, target))
    return mounts


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(args.split())))
    return instructions


# ----------------------------------------------------------------------------- services


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in REQUIRED_SERVICES])
def test_required_service_exists(services, name):
    assert name in services


def test_common_anchor_builds_the_project_image(compose):
    assert compose["x-airflow-common"]["build"] == {"context": ".", "target": "aiops"}


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in COMMON_SERVICES])
def test_airflow_service_uses_the_celery_executor(services, name):
    assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in COMMON_SERVICES])
def test_airflow_service_runs_the_built_image(services, name):
    assert services[name]["build"] == {"context": ".", "target": "aiops"}


def test_broker_is_redis(common_env):
    url = urlsplit(_with_defaults(common_env["AIRFLOW__CELERY__BROKER_URL"]))
    assert (url.scheme, url.hostname) == ("redis", "redis")


@pytest.mark.parametrize(
    "variable",
    [
        pytest.param("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", id="metadata-db"),
        pytest.param("AIRFLOW__CELERY__RESULT_BACKEND", id="result-backend"),
    ],
)
def test_database_is_the_airflow_db_on_postgres(common_env, variable):
    url = urlsplit(_with_defaults(common_env[variable]))
    assert (url.hostname, url.path) == ("postgres", "/airflow")


@pytest.mark.parametrize("name", [pytest.param("postgres", id="postgres"), pytest.param("redis", id="redis")])
def test_backing_service_has_a_healthcheck(services, name):
    assert services[name]["healthcheck"]["test"]


@pytest.mark.parametrize(
    ("name", "dependency"),
    [
        pytest.param(name, dep, id=f"{name}->{dep}")
        for name in COMMON_SERVICES
        for dep in ("postgres", "redis")
    ],
)
def test_airflow_service_waits_for_healthy_backing_service(services, name, dependency):
    assert services[name]["depends_on"][dependency]["condition"] == "service_healthy"


@pytest.mark.parametrize(
    "name", [pytest.param(name, id=name) for name in AIRFLOW_SERVICES if name != "airflow-init"]
)
def test_long_running_service_waits_for_airflow_init(services, name):
    assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_apiserver_publishes_8080_and_checks_the_version_endpoint(services):
    api = services["airflow-apiserver"]
    assert any(_with_defaults(port).endswith(":8080:8080") for port in api["ports"])
    assert "http://localhost:8080/api/v2/version" in api["healthcheck"]["test"]


def test_worker_can_be_scaled(services):
    # A fixed container name or host port would make `--scale airflow-worker=N` fail.
    worker = services["airflow-worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        pytest.param("AIRFLOW__CORE__LOAD_EXAMPLES", "false", id="no-examples"),
        pytest.param(
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
            "http://airflow-apiserver:8080/execution/",
            id="execution-api",
        ),
    ],
)
def test_common_setting(common_env, variable, expected):
    assert _with_defaults(common_env[variable]) == expected


@pytest.mark.parametrize(
    "variable",
    [
        pytest.param("AIRFLOW__API_AUTH__JWT_SECRET", id="jwt-secret"),
        pytest.param("AIRFLOW__CORE__FERNET_KEY", id="fernet-key"),
    ],
)
def test_secret_is_shared_through_the_common_env(services, common_env, variable):
    assert variable in common_env
    assert {services[name]["environment"][variable] for name in COMMON_SERVICES} == {common_env[variable]}


class ComposeRefuses(ValueError):
    """What `docker compose config` / `up` does for ``${X:?message}`` with X unset or empty."""


_FULL = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ${X}, ${X:-default}, ${X-default}, ${X:?error}, ${X?error}; $$ is $."""
    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        present, value = name in env, env.get(name, "")
        if op in (":?", "?") and (not present or (op == ":?" and not value)):
            raise ComposeRefuses(f"required variable {name} is missing a value: {arg}")
        if (op == ":-" and not value) or (op == "-" and not present):
            return arg
        return value
    return _FULL.sub(one, str(value).replace("$$", "\0")).replace("\0", "$")


def _interpolate_all(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate_all(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate_all(v, env) for v in node]
    return _interpolate(node, env) if isinstance(node, str) else node


def _env_example() -> dict[str, str]:
    return dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                if line and not line.startswith("#") and "=" in line)


SECRETS = {"AIRFLOW__CORE__FERNET_KEY": "x" * 43 + "=", "AIRFLOW__API_AUTH__JWT_SECRET": "y" * 64}


@pytest.mark.parametrize(
    "env",
    [pytest.param({}, id="no-env"), pytest.param(_env_example(), id="env-example-copied-unchanged"),
     pytest.param({"AIRFLOW__CORE__FERNET_KEY": SECRETS["AIRFLOW__CORE__FERNET_KEY"]}, id="jwt-secret-missing"),
     pytest.param({"AIRFLOW__API_AUTH__JWT_SECRET": SECRETS["AIRFLOW__API_AUTH__JWT_SECRET"]}, id="fernet-missing")],
)
def test_compose_without_secrets_refuses_to_start_with_a_clear_message(compose, env):
    with pytest.raises(ComposeRefuses) as refused:
        _interpolate_all(compose, env)
    message = str(refused.value)
    assert "AIRFLOW__CORE__FERNET_KEY" in message or "AIRFLOW__API_AUTH__JWT_SECRET" in message
    assert ".env" in message
    assert "docs/deploy.md" in message


def test_compose_with_secrets_in_env_passes_them_to_every_airflow_component(compose):
    config = _interpolate_all(compose, dict(SECRETS))
    for name in COMMON_SERVICES:
        environment = config["services"][name]["environment"]
        for variable, secret in SECRETS.items():
            assert environment[variable] == secret


@pytest.mark.parametrize("variable", list(SECRETS))
def test_no_default_secret_ships_anywhere(common_env, variable):
    assert common_env[variable].startswith(f"${{{variable}:?")  # required, no fallback value
    assert _env_example()[variable] == ""  # the example does not ship one either
    assert "change-me" not in COMPOSE.read_text()


def test_env_files_are_not_committed():
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_approvers_are_users_of_the_compose_auth_manager(common_env):
    """Runbook approvers are user names; compose's auth manager must know users by those names."""
    from aiops.remediation.catalog import load_catalog

    manager = _with_defaults(common_env["AIRFLOW__CORE__AUTH_MANAGER"])
    assert manager.endswith("simple_auth_manager.SimpleAuthManager")
    users = dict(entry.split(":")[:2] for entry in _with_defaults(common_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"])
                 .split(","))
    named = {u for rb in load_catalog() for u in rb.metadata.approvers.users}
    assert named
    assert named <= set(users), named - set(users)
    roles = {r for rb in load_catalog() for r in rb.metadata.approvers.roles}
    assert roles <= set(users.values()) | {"admin"}


def test_generated_password_file_is_in_the_private_volume_and_owner_only(services, common_env):
    path = common_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert path.startswith("/opt/airflow/.aiops/")
    script = "\n".join(services["airflow-init"]["command"])
    assert f"chmod 0600 {path}" in script
    assert services["airflow-init"]["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "false"


def test_parallelism_is_small(common_env):
    assert 1 <= int(_with_defaults(common_env["AIRFLOW__CORE__PARALLELISM"])) <= 32


# ----------------------------------------------------------------------------- connections


def test_aws_connection_is_overridable_from_env(common_env):
    assert common_env["AIRFLOW_CONN_AWS_DEFAULT"].startswith("${AIRFLOW_CONN_AWS_DEFAULT:-")


def test_aws_connection_defaults_to_the_sandbox_service(common_env):
    from airflow.models.connection import Connection

    conn = Connection(conn_id="aws_default", uri=_with_defaults(common_env["AIRFLOW_CONN_AWS_DEFAULT"]))
    assert conn.conn_type == "aws"
    assert conn.extra_dejson["endpoint_url"] == "http://sandbox:5055"


@pytest.mark.parametrize("variable", ["AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_AWS_EXECUTOR"])
def test_both_aws_connections_are_set_and_overridable(common_env, variable):
    # two identities: the reader (aws_default) and the runbook executor (aws_executor)
    assert common_env[variable].startswith("${" + variable + ":-aws://")


def test_state_connection_is_the_aiops_state_database(common_env):
    url = urlsplit(_with_defaults(common_env["AIRFLOW_CONN_AIOPS_STATE"]))
    assert (url.scheme, url.hostname, url.path) == ("postgresql", "postgres", "/aiops_state")


def test_init_sql_creates_the_aiops_state_database():
    assert re.search(r"^\s*CREATE\s+DATABASE\s+aiops_state\b", INIT_SQL.read_text(), re.I | re.M)


def test_postgres_runs_the_init_sql_on_first_start(services):
    targets = {(REPO / source).resolve(): target for source, target in _bind_mounts(services["postgres"])}
    assert targets[INIT_SQL.resolve()].startswith("/docker-entrypoint-initdb.d/")


# ----------------------------------------------------------------------------- mounts


@pytest.mark.parametrize(
    "folder", [pytest.param(f, id=f) for f in ("dags", "plugins", "include", "src", "logs", "config")]
)
def test_project_folder_is_mounted_into_airflow_home(compose, folder):
    assert (f"./{folder}", f"/opt/airflow/{folder}") in _bind_mounts(compose["x-airflow-common"])


def test_every_bind_mounted_host_path_exists(services):
    missing = [
        f"{name}: {source}"
        for name, service in services.items()
        for source, _ in _bind_mounts(service)
        if not (REPO / source).exists()
    ]
    assert missing == []


# ----------------------------------------------------------------------------- profiles


def test_flower_is_only_in_profile_flower(services):
    assert services["flower"]["profiles"] == ["flower"]


def test_sandbox_is_only_in_profile_sandbox(services):
    assert services["sandbox"]["profiles"] == ["sandbox"]


@pytest.mark.parametrize(
    "name", [pytest.param(name, id=name) for name in ["postgres", "redis", *AIRFLOW_SERVICES]]
)
def test_core_service_has_no_profile(services, name):
    assert "profiles" not in services[name]


def test_sandbox_runs_the_emulator(services):
    command = services["sandbox"]["command"]
    words = shlex.split(command) if isinstance(command, str) else command
    assert "aiops sandbox up --host 0.0.0.0 --port 5055 --seed 7" in " ".join(words)


def test_sandbox_port_is_published_on_loopback_only(services):
    ports = [_with_defaults(port) for port in services["sandbox"]["ports"]]
    assert ports
    assert all(port.startswith("127.0.0.1:") for port in ports)


def test_sandbox_healthcheck_uses_python_urllib_on_moto_api(services):
    test = " ".join(services["sandbox"]["healthcheck"]["test"])
    assert "python" in test
    assert "urllib" in test
    assert "http://localhost:5055/moto-api/" in test


# ----------------------------------------------------------------------------- Dockerfile


def test_dockerfile_starts_from_airflow_3_3_2():
    keyword, args = _dockerfile_instructions()[0]
    assert keyword == "FROM"
    assert args.startswith("apache/airflow:3.3.2")


def test_dockerfile_installs_as_the_airflow_user():
    users = [args for keyword, args in _dockerfile_instructions() if keyword == "USER"]
    assert users == ["airflow"]


def test_dockerfile_installs_requirements_without_cache():
    runs = [args for keyword, args in _dockerfile_instructions() if keyword == "RUN"]
    assert any(
        "pip install --no-cache-dir" in run and "-r /opt/airflow/requirements.txt" in run for run in runs
    )


def test_dockerfile_installs_the_package_editable_without_deps():
    runs = [args for keyword, args in _dockerfile_instructions() if keyword == "RUN"]
    assert any(re.search(r"pip install .*--no-deps -e /opt/airflow\b", run) for run in runs)


def test_dockerfile_copies_requirements_before_the_source():
    # Cache-friendliness: editing src/ must not invalidate the dependency layer.
    copies = [args for keyword, args in _dockerfile_instructions() if keyword == "COPY"]
    requirements = next(i for i, args in enumerate(copies) if "requirements.txt" in args)
    source = next(i for i, args in enumerate(copies) if "src/" in args)
    assert requirements < source


# ----------------------------------------------------------------------------- .env.example


@pytest.mark.parametrize(
    "variable",
    [
        pytest.param("AIRFLOW_UID", id="uid"),
        pytest.param("AIRFLOW_CONN_AWS_DEFAULT", id="aws-conn"),
        pytest.param("AIOPS_ARTIFACT_BUCKET", id="bucket"),
    ],
)
def test_env_example_documents_variable(variable):
    assert re.search(rf"^#?\s*{variable}=", ENV_EXAMPLE.read_text(), re.M)


def test_env_example_real_aws_connection_has_no_endpoint_url():
    examples = re.findall(r"^#?\s*AIRFLOW_CONN_AWS_DEFAULT=(.*)$", ENV_EXAMPLE.read_text(), re.M)
    assert examples
    assert not any("endpoint_url" in example for example in examples)
