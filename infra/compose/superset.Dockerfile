# Superset with the drivers the cockpit needs (the image ships none): Trino for the cockpit's
# data, psycopg2 for its metadata in PostgreSQL; the same pins as infra/superset/requirements.txt.
FROM apache/superset:6.1.0
USER root
# `python` is the image's own environment; ensurepip gives it pip when the environment lacks one.
RUN (python -m pip --version || python -m ensurepip --default-pip) \
    && python -m pip install --no-cache-dir "trino[sqlalchemy]==0.340.0" "psycopg2-binary==2.9.13"
USER superset
