"""Nightly reload of yesterday's partition into StarRocks with starload.

Every night at 03:00 UTC this DAG loads the Hive partition ``dt=<yesterday>`` of the
dataset described by the job file into its StarRocks table. The job file holds source,
table, FE, user and state directory; the operator only adds the partition filter.

Setup on the workers:

* ``starload`` on PATH (or ``STARLOAD_BIN=/path/to/starload``);
* the job file at ``$STARLOAD_NIGHTLY_CONFIG`` (default ``/etc/starload/events-nightly.toml``),
  e.g.::

      source = "s3://warehouse/events"
      table = "db.events"
      fe = "http://fe:8030"
      mysql = "fe:9030"
      user = "loader"
      state_dir = "/var/lib/starload"      # shared by retries: a retry resumes
      [partition_types]
      dt = "date"

* an Airflow Connection ``starrocks_default`` whose password is the StarRocks password
  (e.g. ``AIRFLOW_CONN_STARROCKS_DEFAULT='{"conn_type": "generic", "password": "..."}'``).
  The operator passes it to the CLI as ``STARROCKS_PASSWORD`` in the subprocess
  environment, never on the command line, and masks it in the logs.

The schedule is a ``CronTriggerTimetable``: the run triggered on day D has ``ds = D``, on
Airflow 2 and 3 alike, so yesterday's partition is ``macros.ds_add(ds, -1)``. A backfill
or a manual ``airflow dags test starload_nightly 2024-02-01`` loads ``dt = 2024-01-31``.

Failures: a configuration, schema or data error, or a verification mismatch (exit codes
2, 3, 5) fails the task at once (``AirflowFailException``, no retry: fix the job or the
data). An infrastructure failure (exit 4) is retried up to 3 times; each retry re-runs the
same job and the journal in ``state_dir`` skips the chunks already committed.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import DAG, CronTriggerTimetable
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.timetables.trigger import CronTriggerTimetable

from starload_airflow import StarloadOperator

CONFIG = os.environ.get("STARLOAD_NIGHTLY_CONFIG", "/etc/starload/events-nightly.toml")

with DAG(
    dag_id="starload_nightly",
    description="Reload yesterday's partition into StarRocks with starload",
    schedule=CronTriggerTimetable("0 3 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=10),
    },
    tags=["starload", "starrocks"],
) as dag:
    load_yesterday = StarloadOperator(
        task_id="load_yesterday",
        config=CONFIG,
        where="dt = '{{ macros.ds_add(ds, -1) }}'",
        password_conn_id="starrocks_default",
        # The report ({"status": "ok", "rows_loaded": ..., "chunks_skipped": ...}) is
        # returned and lands in XCom as `return_value` for downstream checks.
    )

    # --- Sharding (not scheduled in this DAG; `starload finalize --shards n` runs after the shards) ---
    #
    # A large reload can be spread over several workers with dynamic task mapping. Every
    # shard plans the same deterministic chunk list and loads only the chunks with
    # index % n == i, so the shards never send the same label twice and each shard's
    # retries resume from its own journal:
    #
    #     SHARDS = 4
    #     load_sharded = StarloadOperator.partial(
    #         task_id="load_sharded",
    #         config=CONFIG,
    #         where="dt = '{{ macros.ds_add(ds, -1) }}'",
    #         password_conn_id="starrocks_default",
    #         retries=3,
    #     ).expand(
    #         extra_args=[["--shard", f"{i}/{SHARDS}"] for i in range(SHARDS)],
    #     )
    #
    # Each mapped task instance pushes its own report to XCom; a downstream task can sum
    # `rows_loaded` over `ti.xcom_pull(task_ids="load_sharded")`.
