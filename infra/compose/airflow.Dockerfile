# Airflow with citylake installed: the DAGs (dags/) build the warehouse through Spark Connect.
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root requirements.lock /opt/citylake/requirements.lock
RUN pip install --no-cache-dir -r /opt/citylake/requirements.lock
COPY --chown=airflow:root . /opt/citylake
RUN pip install --no-cache-dir --no-deps /opt/citylake
ENV PYTHONPATH=/opt/citylake
