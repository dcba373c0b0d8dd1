#!/bin/sh
# The compose stack's one-shot init: migrate the operations store (as its owner,
# OLIST_MIGRATION_DATABASE_URL) and load a drop into the warehouse (the drop mounted at /drop
# when it holds the nine files, else a generated sample), as the least-privilege login.
# Every step is idempotent: a drop already loaded is skipped by its checksums.
set -eu
drop="${OLIST_DROP:-/drop}"

olist-bi migrate
olist-bi doctor
if ls "${drop}"/*.csv >/dev/null 2>&1; then
    echo "init: loading the drop at ${drop}"
    olist-bi etl run --source "${drop}"
else
    sample="${OLIST_HOME}/sample"
    if [ ! -f "${sample}/olist_orders_dataset.csv" ]; then
        echo "init: no drop at ${drop}; generating a sample at scale ${OLIST_SAMPLE_SCALE:-1}"
        olist-bi generate --scale "${OLIST_SAMPLE_SCALE:-1}" --seed 42 --out "${sample}"
    fi
    olist-bi etl run --source "${sample}"
fi
