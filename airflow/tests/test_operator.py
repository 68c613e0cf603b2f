"""End-to-end: a real Airflow (from PyPI, SQLite metadata DB) runs StarloadOperator DAGs
against the starload StarRocks simulator.

* the example DAG `starload_nightly` loads yesterday's partition: the task succeeds, the
  report in XCom counts exactly the source rows of that date, and the simulator holds
  exactly those rows;
* the same DAG with a wrong password fails at once (exit 2 -> AirflowFailException), with
  no retry although the task has retries=3;
* `starload_retry_test` (tests/dags) meets two injected HTTP 503s: exit 4 ->
  AirflowException -> Airflow retries -> the journal resumes, every row lands once;
* no password (nor its Basic-auth form) appears in any output, log file or in the
  metadata database (XCom, rendered template fields, ...).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AIRFLOW_DIR

# Fresh per run: any occurrence in an output can only be a leak.
PASSWORD = "pw-" + secrets.token_hex(8)
WRONG_PASSWORD = "wrong-" + secrets.token_hex(8)

AIRFLOW_TIMEOUT = 300  # seconds for one `airflow dags test`


# ------------------------------------------------------------------------ helpers


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Simulator:
    """`starload sim` on free ports, stopped with SIGTERM."""

    def __init__(self, binary: str, tables: Path, workdir: Path, faults: Path | None = None):
        self.binary = binary
        self.fe_port, self.be_port, self.mysql_port = free_ports(3)
        self.log_path = workdir / f"sim-{self.fe_port}.log"
        argv = [
            binary, "sim", "--tables", str(tables),
            "--fe-port", str(self.fe_port), "--be-port", str(self.be_port), "--mysql-port", str(self.mysql_port),
        ]  # fmt: skip
        if faults:
            argv += ["--faults", str(faults)]
        env = dict(os.environ, STARLOAD_SIM_PASSWORD=PASSWORD, NO_COLOR="1")
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 - lives as long as the simulator
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log_file, env=env)
        deadline = time.monotonic() + 60
        while "simulator ready" not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"simulator did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    @property
    def mysql(self) -> str:
        return f"127.0.0.1:{self.mysql_port}"

    @property
    def fe(self) -> str:
        return f"http://127.0.0.1:{self.fe_port}"

    def sql(self, statement: str) -> list[list[str]]:
        """Rows of a SELECT over the simulator's MySQL endpoint (header line dropped)."""
        out = subprocess.run(
            [self.binary, "sql", "--mysql", self.mysql, "--user", "root", statement],
            env=dict(os.environ, STARROCKS_PASSWORD=PASSWORD, NO_COLOR="1"),
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        return [line.split("\t") for line in out.splitlines()[1:] if line]

    def count(self, where: str = "") -> int:
        return int(self.sql(f"SELECT COUNT(*) FROM demo.events {where}")[0][0])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def write_job(path: Path, sim: Simulator, source: Path, state_dir: Path, **extra: object) -> Path:
    lines = [
        f'source = "{source}"',
        'table = "demo.events"',
        f'fe = "{sim.fe}"',
        f'mysql = "{sim.mysql}"',
        'user = "root"',
        f'state_dir = "{state_dir}"',
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    lines += ["", "[partition_types]", 'dt = "date"', ""]
    path.write_text("\n".join(lines))
    return path


def source_rows_by_date(binary: str, job: Path) -> dict[str, int]:
    """Rows per `dt` partition, from the plan's Parquet footers (independent of any load)."""
    out = subprocess.run(
        [binary, "plan", "--config", str(job), "--json"],
        env=dict(os.environ, STARROCKS_PASSWORD=PASSWORD, NO_COLOR="1"),
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    plan = json.loads(out)
    dt_index = plan["partition_keys"].index("dt")
    rows: dict[str, int] = {}
    for f in plan["files"]:
        rows[f["partition"][dt_index]] = rows.get(f["partition"][dt_index], 0) + f["rows"]
    return rows


class Airflow:
    """A throwaway AIRFLOW_HOME with a migrated SQLite metadata database."""

    def __init__(self, home: Path, dags: Path, starload_bin: str):
        self.home = home
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "STARROCKS_", "STARLOAD_"))}
        env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            STARLOAD_BIN=starload_bin,
            STARLOAD_LOG="starload=debug",  # the most verbose CLI logs a leak could hide in
        )
        self.env = env
        self.outputs: list[str] = []

    def run(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            check=False,
            env=dict(self.env, **(extra_env or {})),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=AIRFLOW_TIMEOUT,
        )  # fmt: skip
        self.outputs.append(proc.stdout)
        return proc

    @contextlib.contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        # Read-only, and closed after each use: a connection left open in
        # this process (`with connect()` only commits) saw the file Airflow
        # rewrote since as "database disk image is malformed".
        db = sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True)
        try:
            yield db
        finally:
            db.close()

    def task_instance(self, dag_id: str, task_id: str, logical_date: str) -> dict:
        with self.db() as db:
            db.row_factory = sqlite3.Row
            date_col = "logical_date"
            if date_col not in {r[1] for r in db.execute("PRAGMA table_info(dag_run)")}:
                date_col = "execution_date"  # Airflow 2.x
            rows = db.execute(
                f"SELECT ti.run_id, ti.state, ti.try_number, ti.max_tries FROM task_instance ti "
                f"JOIN dag_run dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id "
                f"WHERE ti.dag_id = ? AND ti.task_id = ? AND dr.{date_col} LIKE ?",
                (dag_id, task_id, logical_date + "%"),
            ).fetchall()
        assert len(rows) == 1, rows
        return dict(rows[0])

    def xcom(self, dag_id: str, task_id: str, run_id: str, key: str = "return_value"):
        with self.db() as db:
            rows = db.execute(
                "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND run_id = ? AND key = ?",
                (dag_id, task_id, run_id, key),
            ).fetchall()
        assert len(rows) == 1, rows
        value = rows[0][0]
        if isinstance(value, bytes):
            value = value.decode()
        value = json.loads(value)
        return json.loads(value) if isinstance(value, str) else value

    def everything_written(self) -> str:
        """Every CLI output, every file under AIRFLOW_HOME, and a SQL dump of the metadata DB."""
        parts = list(self.outputs)
        for path in sorted(self.home.rglob("*")):
            if path.is_file():
                parts.append(path.read_bytes().decode("utf-8", "replace"))
        with self.db() as db:
            parts.extend(db.iterdump())
        return "\n".join(parts)


def secret_forms(secret: str) -> list[str]:
    """The secret, and the Basic-auth header value it would travel in."""
    return [secret, base64.b64encode(f"root:{secret}".encode()).decode(), base64.b64encode(secret.encode()).decode()]


def assert_no_secrets(airflow: Airflow) -> None:
    written = airflow.everything_written()
    assert written.strip()
    for secret in (PASSWORD, WRONG_PASSWORD):
        for form in secret_forms(secret):
            assert form not in written, "a password leaked into Airflow's logs, outputs or metadata DB"


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stack(tmp_path_factory, starload_bin):
    """Demo data, a simulator, a job file and a migrated Airflow home."""
    work = tmp_path_factory.mktemp("e2e")
    subprocess.run(
        [starload_bin, "demo-data", "--out", str(work / "demo"), "--rows", "3000"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    dags = work / "dags"
    dags.mkdir()
    shutil.copy(AIRFLOW_DIR / "example_dags" / "starload_nightly.py", dags)
    shutil.copy(AIRFLOW_DIR / "tests" / "dags" / "starload_retry_test.py", dags)

    airflow = Airflow(work / "airflow-home", dags, starload_bin)
    migrate = airflow.run("db", "migrate")
    assert migrate.returncode == 0, migrate.stdout[-5000:]

    sim = Simulator(starload_bin, work / "demo" / "tables.toml", work)
    try:
        job = write_job(work / "nightly.toml", sim, work / "demo" / "data", work / "state", chunk_bytes="64KiB")
        rows = source_rows_by_date(starload_bin, job)
        yield {"work": work, "airflow": airflow, "sim": sim, "job": job, "rows": rows, "bin": starload_bin}
    finally:
        sim.stop()


def dags_test(airflow: Airflow, dag_id: str, date: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    started = time.monotonic()
    proc = airflow.run("dags", "test", dag_id, date, extra_env=extra_env)
    print(f"airflow dags test {dag_id} {date}: exit {proc.returncode} in {time.monotonic() - started:.1f}s")
    return proc


def conn_env(password: str) -> str:
    return json.dumps({"conn_type": "generic", "password": password})


# -------------------------------------------------------------------------- tests


def test_nightly_dag_loads_yesterdays_partition(stack):
    airflow, sim = stack["airflow"], stack["sim"]
    # The run of 2024-02-01 loads yesterday's partition, dt=2024-01-31.
    expected = stack["rows"]["2024-01-31"]
    assert expected > 0

    proc = dags_test(
        airflow,
        "starload_nightly",
        "2024-02-01",
        {"AIRFLOW_CONN_STARROCKS_DEFAULT": conn_env(PASSWORD), "STARLOAD_NIGHTLY_CONFIG": str(stack["job"])},
    )
    assert proc.returncode == 0, proc.stdout[-8000:]

    ti = airflow.task_instance("starload_nightly", "load_yesterday", "2024-02-01")
    assert ti["state"] == "success"
    assert ti["try_number"] == 1

    report = airflow.xcom("starload_nightly", "load_yesterday", ti["run_id"])
    assert report["status"] == "ok"
    assert report["target"] == "demo.events"
    assert report["rows_loaded"] == expected
    assert report["rows_skipped"] == 0
    assert report["chunks_loaded"] >= 1

    # What StarRocks (the simulator) holds: exactly that partition, every row once.
    assert sim.count("WHERE dt = '2024-01-31'") == expected
    assert sim.count() == expected

    # The template rendered yesterday's date, and the CLI's logs reached the task log.
    assert "--where=\"dt = '2024-01-31'\"" in proc.stdout
    assert f"{expected} rows loaded" in proc.stdout
    assert_no_secrets(airflow)


def test_wrong_password_fails_at_once_without_retry(stack):
    airflow, sim = stack["airflow"], stack["sim"]
    proc = dags_test(
        airflow,
        "starload_nightly",
        "2024-02-02",
        {"AIRFLOW_CONN_STARROCKS_DEFAULT": conn_env(WRONG_PASSWORD), "STARLOAD_NIGHTLY_CONFIG": str(stack["job"])},
    )
    assert proc.returncode != 0, proc.stdout[-8000:]

    ti = airflow.task_instance("starload_nightly", "load_yesterday", "2024-02-02")
    assert ti["state"] == "failed"  # not up_for_retry ...
    assert ti["try_number"] == 1  # ... and tried once,
    assert ti["max_tries"] == 3  # although it had 3 retries.

    assert "AirflowFailException" in proc.stdout
    assert "exit code 2 (configuration or schema error)" in proc.stdout
    assert "rejected the credentials" in proc.stdout  # the CLI's one-line reason
    assert sim.count("WHERE dt = '2024-02-01'") == 0
    assert_no_secrets(airflow)


def test_infrastructure_failure_is_retried_and_resumes(stack):
    airflow, work, binary = stack["airflow"], stack["work"], stack["bin"]
    faults = work / "faults.toml"
    # One chunk at a time: BE request 1 is chunk 0, requests 2 and 3 are both attempts
    # of chunk 1 (max_retries = 1), so the first task attempt exits 4 with chunk 1 missing.
    faults.write_text(
        '[[faults]]\nrequest = 2\nfault = "http"\nstatus = 503\n\n[[faults]]\nrequest = 3\nfault = "http"\nstatus = 503\n'
    )
    sim = Simulator(binary, work / "demo" / "tables.toml", work, faults=faults)
    try:
        job = write_job(
            work / "retry.toml",
            sim,
            work / "demo" / "data",
            work / "state-retry",
            chunk_bytes="16KiB",
            parallel=1,
            max_retries=1,
        )
        expected = stack["rows"]["2024-01-30"]
        proc = dags_test(
            airflow,
            "starload_retry_test",
            "2024-01-30",
            {"STARLOAD_RETRY_CONFIG": str(job), "STARLOAD_TEST_PASSWORD": PASSWORD},
        )
        assert proc.returncode == 0, proc.stdout[-8000:]

        ti = airflow.task_instance("starload_retry_test", "load", "2024-01-30")
        assert ti["state"] == "success"
        assert ti["try_number"] == 2  # first attempt failed with exit 4, Airflow retried

        assert "exit code 4 (infrastructure failure" in proc.stdout
        assert "AirflowFailException" not in proc.stdout

        report = airflow.xcom("starload_retry_test", "load", ti["run_id"])
        assert report["status"] == "ok"
        assert report["chunks"] > 2
        # The retry sent only what the first attempt had not committed (rows_skipped
        # counts the rows of chunks found committed in the journal).
        assert report["chunks_loaded"] >= 1
        assert report["rows_loaded"] + report["rows_skipped"] == expected
        assert 0 < report["rows_loaded"] < expected

        assert sim.count() == expected  # every row exactly once
        assert_no_secrets(airflow)
    finally:
        sim.stop()
