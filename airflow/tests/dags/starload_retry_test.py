"""Test DAG: a load whose first attempt hits an infrastructure failure (exit 4).

Used by tests/test_operator.py against a simulator that answers HTTP 503 to two BE
requests: the first attempt exits 4, Airflow retries (AirflowException is retryable),
and the retry resumes from the journal, loading only the chunk that had failed.
The password comes from an environment variable of the worker (`password_env`).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from starload_airflow import StarloadOperator

with DAG(
    dag_id="starload_retry_test",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1)},
) as dag:
    StarloadOperator(
        task_id="load",
        config=os.environ.get("STARLOAD_RETRY_CONFIG", "/nonexistent/retry.toml"),
        where="dt = '{{ ds }}'",
        password_env="STARLOAD_TEST_PASSWORD",
    )
