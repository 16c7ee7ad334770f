# PostgreSQL 15 + wal2json for infra/compose.yaml (the jar-based local stack uses Debian's packages instead).
# The official image already carries the PGDG apt repository, which ships postgresql-15-wal2json.
FROM postgres:15
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-wal2json \
 && rm -rf /var/lib/apt/lists/*
# Replication connections from the host arrive through the Docker bridge, not from 127.0.0.1, and the image's
# default pg_hba.conf only allows local replication: allow it with a password (runs once, at initdb).
RUN printf '#!/bin/sh\necho "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"\n' \
      > /docker-entrypoint-initdb.d/10-replication-hba.sh
