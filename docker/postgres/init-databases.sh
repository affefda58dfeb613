#!/bin/sh
# Runs once, when the postgres container starts on an empty data volume
# (/docker-entrypoint-initdb.d): one role and one database per owner, passwords from the environment.
#   airflow            Airflow's metadata DB (and the Celery result backend)
#   onewindow_store    the service's store (applications, materials, consents, usage log)
#   onewindow_catalog  the library catalog (DuckLake)
set -eu
: "${AIRFLOW_DB_PASSWORD:?}" "${ONEWINDOW_STORE_DB_PASSWORD:?}" "${ONEWINDOW_CATALOG_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v store_pw="$ONEWINDOW_STORE_DB_PASSWORD" \
     -v catalog_pw="$ONEWINDOW_CATALOG_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE onewindow_store LOGIN PASSWORD :'store_pw';
CREATE DATABASE onewindow_store OWNER onewindow_store;
CREATE ROLE onewindow_catalog LOGIN PASSWORD :'catalog_pw';
CREATE DATABASE onewindow_catalog OWNER onewindow_catalog;
SQL
