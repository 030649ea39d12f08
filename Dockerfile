# MatCarv AIOps images: the official Airflow image plus the pinned runtime requirements and the
# `aiops` package (editable, so docker-compose.yaml can bind-mount ./src over it without a rebuild).
# Two targets: `aiops` (the product: no emulator, no test tools) and `sandbox` (the product plus the
# simulated account's emulator, for the compose `sandbox` profile only).
FROM apache/airflow:3.3.2-python3.11 AS aiops

USER airflow
WORKDIR /opt/airflow

# Dependencies first: this layer is rebuilt only when requirements.txt changes. Naming
# apache-airflow with the image's version keeps pip from up- or downgrading Airflow itself.
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/requirements.txt

# The project itself (small layer, changes often). /opt/airflow/.aiops is AIOPS_HOME; creating it
# here gives the named volume mounted on it the airflow user's ownership.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/
COPY --chown=airflow:0 src/ /opt/airflow/src/
RUN pip install --no-cache-dir --no-deps -e /opt/airflow \
    && mkdir -p /opt/airflow/.aiops

# The emulator with the simulated account (moto server + the aiops_sandbox package).
FROM aiops AS sandbox
COPY --chown=airflow:0 requirements-dev.txt /opt/airflow/requirements-dev.txt
COPY --chown=airflow:0 sandbox/ /opt/airflow/sandbox/
RUN grep -E '^(moto|Flask|flask-cors|Werkzeug|blinker|xmltodict|responses|py-partiql-parser|joserfc|jsonpatch|jsonpointer|docker|aws-xray-sdk|graphql-core|cfn-lint|regex|sympy|mpmath|networkx|openapi-|jsonschema-path|pathable|rfc3339-validator|antlr4-python3-runtime)' \
        /opt/airflow/requirements-dev.txt > /tmp/sandbox-requirements.txt \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/sandbox-requirements.txt \
    && pip install --no-cache-dir --no-deps -e /opt/airflow/sandbox
