#!/bin/sh
# What Bytewax's Helm chart runs in every pod of a dataflow's StatefulSet: `sh ./entrypoint.sh` in the image's
# working directory (/opt/cdchub, where the Dockerfile copies this file).
#
# The chart sets BYTEWAX_PYTHON_FILE_PATH to /var/bytewax/<configuration.pythonFileName>; cdchub's pythonFileName is
# the dataflow's import string, e.g. flows.dataflows:dataflow('to_crm') (the dataflows are in the image, not in the
# chart's ConfigMap), so the prefix is cut off.  Everything else the chart sets is read by `python -m bytewax.run`
# itself: BYTEWAX_WORKERS_PER_PROCESS, BYTEWAX_POD_NAME with BYTEWAX_STATEFULSET_NAME (this process's id),
# BYTEWAX_HOSTFILE_PATH (every process's address), BYTEWAX_RECOVERY_DIRECTORY, BYTEWAX_SNAPSHOT_INTERVAL and
# BYTEWAX_RECOVERY_BACKUP_INTERVAL.
set -eu
target="${BYTEWAX_PYTHON_FILE_PATH#"${BYTEWAX_WORKDIR:-/var/bytewax}"/}"
echo "cdchub: dataflow ${target}, pod ${BYTEWAX_POD_NAME:-?}, ${BYTEWAX_WORKERS_PER_PROCESS:-1} worker(s)"
exec python -m bytewax.run "$target"
