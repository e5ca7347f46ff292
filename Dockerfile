# The image every Airflow service of docker-compose.yml runs: Airflow with Pingan installed from this
# checkout (the production install: no simulator, no test tools). Tags are pinned; the Airflow version is
# pyproject.toml's (tests/test_docker_deployment.py checks both).
FROM minio/mc:RELEASE.2025-08-13T08-35-41Z AS mc

FROM apache/airflow:3.3.2-python3.11
# the init job creates the buckets with mc before `pingan partners provision`
COPY --from=mc /usr/bin/mc /usr/bin/mc
WORKDIR /opt/pingan
COPY --chown=airflow:root pyproject.toml README.md ./
COPY --chown=airflow:root pingan ./pingan
COPY --chown=airflow:root connectors ./connectors
COPY --chown=airflow:root expectations ./expectations
COPY --chown=airflow:root agreements ./agreements
COPY --chown=airflow:root dbt ./dbt
COPY --chown=airflow:root dags ./dags
# editable, so the package finds connectors/, dbt/, ... beside it (pingan.core.settings.PROJECT_ROOT)
RUN pip install --no-cache-dir -e . "apache-airflow==3.3.2"
ENV PINGAN_DEPLOYMENT=prod \
    PINGAN_HOME=/opt/pingan/var \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/pingan/dags
