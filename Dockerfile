# MatCarv AIOps image: the official Airflow image plus the pinned requirements and the `aiops`
# package (editable, so docker-compose.yaml can bind-mount ./src over it without a rebuild).
FROM apache/airflow:3.3.2-python3.11

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
