#!/bin/sh
# What Bytewax's Helm chart runs in its init container when configuration.recovery.enabled is true
# (`sh ./entrypoint-recovery.sh`): create the recovery partitions once.  Their number, partsCount, is the most
# workers over all processes the dataflow may ever run with; cdchub uses 16 (cdchub.runtime.RECOVERY_PARTITIONS).
set -eu
if [ -e "${BYTEWAX_RECOVERY_DIRECTORY}/part-0.sqlite3" ]; then
    echo "cdchub: recovery partitions exist in ${BYTEWAX_RECOVERY_DIRECTORY}"
else
    exec python -m bytewax.recovery "${BYTEWAX_RECOVERY_DIRECTORY}" "${BYTEWAX_RECOVERY_PARTS}"
fi
