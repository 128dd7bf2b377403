#!/usr/bin/env bash
# One database and one owning role per service (runs once, on an empty data volume).
set -euo pipefail
create() {
  local db=$1 password=$2
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v db="$db" -v pw="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'db', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'db') \gexec
SQL
}
create airflow "$AIRFLOW_DB_PASSWORD"
create superset "$SUPERSET_DB_PASSWORD"
create openmetadata "$OPENMETADATA_DB_PASSWORD"
create quality "$QUALITY_DB_PASSWORD"
create grants "$GRANTS_DB_PASSWORD"
