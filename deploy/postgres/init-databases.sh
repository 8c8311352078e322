#!/bin/sh
# One database per service, each owned by its own role: auth cannot read alerts' tables and vice versa.
# The postgres image runs this once, when it initialises an empty data volume.
set -eu

: "${AUTH_DB_PASSWORD:?AUTH_DB_PASSWORD must be set}"
: "${ALERTS_DB_PASSWORD:?ALERTS_DB_PASSWORD must be set}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v auth_password="$AUTH_DB_PASSWORD" -v alerts_password="$ALERTS_DB_PASSWORD" <<'SQL'
CREATE ROLE auth LOGIN PASSWORD :'auth_password';
CREATE DATABASE auth OWNER auth;
REVOKE ALL ON DATABASE auth FROM PUBLIC;
CREATE ROLE alerts LOGIN PASSWORD :'alerts_password';
CREATE DATABASE alerts OWNER alerts;
REVOKE ALL ON DATABASE alerts FROM PUBLIC;
SQL
