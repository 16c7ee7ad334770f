# PostgreSQL 15 for infra/compose.yaml (the jar-based local stack uses Debian's packages instead).  The capture
# decodes with the built-in pgoutput, so the official image needs no extra package.
FROM postgres:15
# Replication connections from the host arrive through the Docker bridge, not from 127.0.0.1, and the image's
# default pg_hba.conf only allows local replication: allow it with a password (runs once, at initdb).
RUN printf '#!/bin/sh\necho "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"\n' \
      > /docker-entrypoint-initdb.d/10-replication-hba.sh
