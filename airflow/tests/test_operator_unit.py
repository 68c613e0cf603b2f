"""Unit tests of StarloadOperator against a fake `starload` script.

The fake binary records its argv and environment, prints what it is told on stderr and
stdout, and exits with the code it is told, so every exit code of the CLI contract can be
checked without a StarRocks or a real load.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from starload_airflow import StarloadOperator, exception_for_exit_code
from starload_airflow._compat import AirflowException, AirflowFailException
from starload_airflow.operators import display_command, failure_reason

PASSWORD = "unit-S3cret/pw"

FAKE_STARLOAD = """#!{python}
import json, os, signal, sys, time
record = os.environ.get("FAKE_RECORD")
if record:
    with open(record, "w") as f:
        json.dump({{
            "argv": sys.argv[1:],
            "password": os.environ.get("STARROCKS_PASSWORD"),
            "no_color": os.environ.get("NO_COLOR"),
            "extra": os.environ.get("FAKE_EXTRA"),
        }}, f)
for line in filter(None, os.environ.get("FAKE_STDERR", "").split("\\n")):
    print(line, file=sys.stderr, flush=True)
if "FAKE_STDOUT" in os.environ:
    sys.stdout.write(os.environ["FAKE_STDOUT"])
    sys.stdout.flush()
if "FAKE_SLEEP" in os.environ:
    time.sleep(float(os.environ["FAKE_SLEEP"]))
if os.environ.get("FAKE_SIGNAL"):
    os.kill(os.getpid(), int(os.environ["FAKE_SIGNAL"]))
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""

REPORT = {
    "status": "ok",
    "job": "0123abcd",
    "source": "/data/events",
    "target": "demo.events",
    "files": 3,
    "source_rows": 669,
    "chunks": 2,
    "chunks_loaded": 2,
    "chunks_skipped": 0,
    "rows_sent": 669,
    "rows_loaded": 669,
    "rows_skipped": 0,
    "bytes_sent": 57780,
    "retries": 0,
    "throttled": 0,
    "seconds": 0.5,
    "rows_per_sec": 1338.0,
    "mib_per_sec": 0.1,
    "journal": "/state/jobs/0123abcd.journal",
}


class RecordingLog:
    """Stands in for the operator's logger (stdlib in Airflow 2, structlog in 3)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _record(self, msg, *args, **kwargs):
        self.lines.append(str(msg) % args if args else str(msg))

    info = warning = error = debug = exception = critical = _record

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class RecordingStarloadOperator(StarloadOperator):
    """The operator with its task logger replaced by a RecordingLog."""

    @property
    def log(self):
        if "_recording_log" not in self.__dict__:
            self.__dict__["_recording_log"] = RecordingLog()
        return self.__dict__["_recording_log"]


@pytest.fixture
def fake_bin(tmp_path: Path) -> str:
    path = tmp_path / "starload"
    path.write_text(FAKE_STARLOAD.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "record.json"


def make_op(fake_bin: str, record: Path, *, fake: dict | None = None, **kwargs) -> StarloadOperator:
    env = {"FAKE_RECORD": str(record)}
    env.update(fake or {})
    kwargs.setdefault("task_id", "load")
    kwargs.setdefault("config", "/jobs/events.toml")
    return RecordingStarloadOperator(binary=fake_bin, env=env, **kwargs)


def recorded(record: Path) -> dict:
    return json.loads(record.read_text())


# ------------------------------------------------------------------------ success


def test_success_returns_report_and_passes_password_in_env_only(fake_bin, record, monkeypatch):
    monkeypatch.setenv("STARLOAD_TEST_PW", PASSWORD)
    op = make_op(
        fake_bin,
        record,
        where="dt = '2024-01-31'",
        password_env="STARLOAD_TEST_PW",
        fake={"FAKE_STDOUT": json.dumps(REPORT), "FAKE_STDERR": "planning 3 files\nloading 2 chunks"},
    )
    result = op.execute({})
    assert result == REPORT
    rec = recorded(record)
    assert rec["argv"] == ["load", "--config=/jobs/events.toml", "--where=dt = '2024-01-31'", "--json"]
    assert rec["password"] == PASSWORD
    assert not any(PASSWORD in arg for arg in rec["argv"])
    assert rec["no_color"] == "1"
    # stderr streamed into the task log, in order, after the command line
    lines = op.log.lines
    running = next(i for i, line in enumerate(lines) if line.startswith("Running: "))
    assert running < lines.index("planning 3 files") < lines.index("loading 2 chunks")
    assert "669 rows loaded" in op.log.text
    assert PASSWORD not in op.log.text


def test_credentials_written_into_a_url_stay_out_of_the_log(fake_bin, record):
    op = make_op(
        fake_bin,
        record,
        fe="http://loader:LEAKpw/x@fe:8030",
        source="hdfs://nn:8020/data/a@b",
        fake={"FAKE_STDOUT": json.dumps(REPORT)},
    )
    op.execute({})
    assert "LEAKpw" not in op.log.text
    assert "http://***@fe:8030" in op.log.text
    assert "hdfs://nn:8020/data/a@b" in op.log.text, "a port is not a password"


def test_every_override_becomes_a_flag(fake_bin, record):
    op = make_op(
        fake_bin,
        record,
        source="/data/events",
        table="demo.events",
        fe="http://fe:8030",
        mysql="fe:9030",
        user="loader",
        state_dir="/state",
        where="dt = '2024-01-31'",
        select="event_id, -amount AS amount",
        clock="2024-02-01T00:00:00+00:00",
        chunk_bytes="256MiB",
        parallel=4,
        extra_args=["--timezone", "UTC"],
        fake={"FAKE_STDOUT": json.dumps(REPORT)},
    )
    op.execute({})
    assert recorded(record)["argv"] == [
        "load",
        "--config=/jobs/events.toml",
        "--source=/data/events",
        "--table=demo.events",
        "--fe=http://fe:8030",
        "--mysql=fe:9030",
        "--user=loader",
        "--state-dir=/state",
        "--where=dt = '2024-01-31'",
        "--select=event_id, -amount AS amount",
        "--clock=2024-02-01T00:00:00+00:00",
        "--chunk-bytes=256MiB",
        "--parallel=4",
        "--timezone",
        "UTC",
        "--json",
    ]
    assert recorded(record)["password"] is None  # no password source: nothing injected


def test_plan_mode(fake_bin, record):
    plan = {"job": "0123abcd", "files": [], "chunks": []}
    op = make_op(fake_bin, record, mode="plan", fake={"FAKE_STDOUT": json.dumps(plan)})
    assert op.execute({}) == plan
    assert recorded(record)["argv"] == ["plan", "--config=/jobs/events.toml", "--json"]


def test_password_from_connection(fake_bin, record, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_STARROCKS_UNIT", json.dumps({"conn_type": "generic", "login": "loader", "password": PASSWORD})
    )
    op = make_op(fake_bin, record, password_conn_id="starrocks_unit", fake={"FAKE_STDOUT": json.dumps(REPORT)})
    op.execute({})
    rec = recorded(record)
    assert rec["password"] == PASSWORD
    assert not any(PASSWORD in arg for arg in rec["argv"])


def test_password_never_leaks_even_if_the_cli_printed_it(fake_bin, record, monkeypatch):
    monkeypatch.setenv("STARLOAD_TEST_PW", PASSWORD)
    leaky = dict(REPORT, journal=f"/state/{PASSWORD}.journal")
    op = make_op(
        fake_bin,
        record,
        password_env="STARLOAD_TEST_PW",
        fake={"FAKE_STDOUT": json.dumps(leaky), "FAKE_STDERR": f"debug: password={PASSWORD}"},
    )
    result = op.execute({})
    assert PASSWORD not in json.dumps(result)
    assert result["journal"] == "/state/***.journal"
    assert PASSWORD not in op.log.text
    assert "password=***" in op.log.text

    op = make_op(
        fake_bin,
        record,
        password_env="STARLOAD_TEST_PW",
        fake={"FAKE_EXIT": "2", "FAKE_STDERR": f"starload: access denied for password {PASSWORD}"},
    )
    with pytest.raises(AirflowFailException) as err:
        op.execute({})
    assert PASSWORD not in str(err.value)
    assert "access denied for password ***" in str(err.value)


def test_ansi_colours_are_stripped(fake_bin, record):
    op = make_op(
        fake_bin,
        record,
        fake={
            "FAKE_STDOUT": json.dumps(REPORT),
            "FAKE_STDERR": "\x1b[2m2024-01-01\x1b[0m \x1b[33m WARN\x1b[0m retrying",
        },
    )
    op.execute({})
    assert "2024-01-01  WARN retrying" in op.log.lines


# --------------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(2, "configuration or schema error"), (3, "data error"), (5, "verification mismatch")],
)
def test_exit_codes_2_3_5_fail_without_retry(fake_bin, record, code, meaning):
    op = make_op(
        fake_bin,
        record,
        fake={
            "FAKE_EXIT": str(code),
            "FAKE_STDERR": "WARN something first\nstarload: chunk 3 holds row 17 that cannot load",
        },
    )
    with pytest.raises(AirflowFailException) as err:
        op.execute({})
    message = str(err.value)
    assert f"exit code {code}" in message
    assert meaning in message
    assert "chunk 3 holds row 17 that cannot load" in message


@pytest.mark.parametrize(("code", "meaning"), [(4, "infrastructure failure"), (1, "internal error"), (7, "unknown")])
def test_exit_codes_4_1_other_are_retryable(fake_bin, record, code, meaning):
    op = make_op(fake_bin, record, fake={"FAKE_EXIT": str(code), "FAKE_STDERR": "starload: BE unreachable"})
    with pytest.raises(AirflowException) as err:
        op.execute({})
    assert not isinstance(err.value, AirflowFailException)
    assert f"exit code {code}" in str(err.value)
    assert meaning in str(err.value)
    assert "BE unreachable" in str(err.value)


def test_killed_by_signal_is_retryable(fake_bin, record):
    op = make_op(fake_bin, record, fake={"FAKE_SIGNAL": str(int(signal.SIGKILL))})
    with pytest.raises(AirflowException) as err:
        op.execute({})
    assert not isinstance(err.value, AirflowFailException)
    assert "killed by signal 9" in str(err.value)


def test_report_printed_on_failure_is_logged(fake_bin, record):
    partial = dict(REPORT, status="failed", chunks_loaded=1)
    op = make_op(
        fake_bin,
        record,
        fake={"FAKE_EXIT": "4", "FAKE_STDOUT": json.dumps(partial), "FAKE_STDERR": "starload: chunk 1 failed"},
    )
    with pytest.raises(AirflowException):
        op.execute({})
    assert '"chunks_loaded": 1' in op.log.text


def test_exit_0_without_json_is_an_error(fake_bin, record):
    op = make_op(fake_bin, record, fake={"FAKE_STDOUT": "not json"})
    with pytest.raises(AirflowException, match="no JSON"):
        op.execute({})


def test_mapping_function():
    assert type(exception_for_exit_code(2, "r")) is AirflowFailException
    assert type(exception_for_exit_code(3, "r")) is AirflowFailException
    assert type(exception_for_exit_code(5, "r")) is AirflowFailException
    assert type(exception_for_exit_code(4, "r")) is AirflowException
    assert type(exception_for_exit_code(1, "r")) is AirflowException
    assert type(exception_for_exit_code(-15, "r")) is AirflowException
    assert failure_reason(["x", "starload: the reason", ""]) == "the reason"
    assert failure_reason(["only a panic line"]) == "only a panic line"
    assert failure_reason([]) == "no reason given on stderr"


# ------------------------------------------------------------ configuration errors


def test_missing_password_env_fails_without_retry(fake_bin, record, monkeypatch):
    monkeypatch.delenv("STARLOAD_TEST_PW", raising=False)
    op = make_op(fake_bin, record, password_env="STARLOAD_TEST_PW")
    with pytest.raises(AirflowFailException, match="STARLOAD_TEST_PW"):
        op.execute({})
    assert not record.exists()  # the CLI was not started


def test_connection_without_password_fails(fake_bin, record, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_STARROCKS_NOPW", json.dumps({"conn_type": "generic", "login": "x"}))
    op = make_op(fake_bin, record, password_conn_id="starrocks_nopw")
    with pytest.raises(AirflowFailException, match="no password"):
        op.execute({})


def test_invalid_arguments():
    with pytest.raises(ValueError, match="mode"):
        StarloadOperator(task_id="t", config="j.toml", mode="unload")
    with pytest.raises(ValueError, match="not both"):
        StarloadOperator(task_id="t", config="j.toml", password_conn_id="c", password_env="E")


def test_binary_resolution(fake_bin, record, monkeypatch, tmp_path):
    monkeypatch.setenv("STARLOAD_BIN", fake_bin)
    op = StarloadOperator(task_id="t", config="j.toml")
    assert op.resolve_binary() == fake_bin

    monkeypatch.delenv("STARLOAD_BIN")
    monkeypatch.setenv("PATH", str(Path(fake_bin).parent) + os.pathsep + os.environ.get("PATH", ""))
    assert op.resolve_binary() == fake_bin  # `starload` found on PATH

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(AirflowFailException, match="not found on PATH"):
        op.resolve_binary()
    with pytest.raises(AirflowFailException, match="not an executable"):
        StarloadOperator(task_id="t", config="j.toml", binary=str(tmp_path / "nope")).resolve_binary()


def test_templated_fields_render():
    op = StarloadOperator(
        task_id="t",
        config="/jobs/{{ ds_nodash }}.toml",
        source="/data/dt={{ ds }}",
        where="dt = '{{ ds }}'",
        select="*, '{{ ds }}' AS loaded_for",
        clock="{{ data_interval_end }}",
    )
    for field in ("config", "source", "where", "select", "clock"):
        assert field in op.template_fields
    op.render_template_fields(
        {"ds": "2024-02-01", "ds_nodash": "20240201", "data_interval_end": "2024-02-02T00:00:00+00:00"}
    )
    assert op.config == "/jobs/20240201.toml"
    assert op.source == "/data/dt=2024-02-01"
    assert op.where == "dt = '2024-02-01'"
    assert op.select == "*, '2024-02-01' AS loaded_for"
    assert op.clock == "2024-02-02T00:00:00+00:00"
    assert "--clock=2024-02-02T00:00:00+00:00" in op.build_command("/bin/starload")


def test_display_command_quotes_values_readably():
    shown = display_command(["/bin/starload", "load", "--config=/a b/j.toml", "--where=dt = '2024-01-31'", "--json"])
    assert shown == "/bin/starload load --config='/a b/j.toml' --where=\"dt = '2024-01-31'\" --json"


def test_on_kill_stops_the_cli(fake_bin, record):
    op = make_op(fake_bin, record, fake={"FAKE_SLEEP": "60", "FAKE_STDERR": "loading"})

    def kill_when_started():
        deadline = time.monotonic() + 20
        while op._proc is None and time.monotonic() < deadline:
            time.sleep(0.05)
        op.on_kill()

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    started = time.monotonic()
    with pytest.raises(AirflowException) as err:
        op.execute({})  # in the main thread, as in a task
    killer.join()
    assert time.monotonic() - started < 20
    assert not isinstance(err.value, AirflowFailException)
    assert "killed by signal 15" in str(err.value)


def test_example_dag_structure():
    import importlib.util

    from conftest import AIRFLOW_DIR

    path = AIRFLOW_DIR / "example_dags" / "starload_nightly.py"
    spec = importlib.util.spec_from_file_location("starload_nightly_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    task = module.dag.get_task("load_yesterday")
    assert isinstance(task, StarloadOperator)
    assert task.retries == 3
    assert task.where == "dt = '{{ macros.ds_add(ds, -1) }}'"
    assert task.password_conn_id == "starrocks_default"
    assert task.mode == "load"
    # The sharding recipe is documented in the file (commented out until `--shard` exists).
    assert "StarloadOperator.partial(" in path.read_text()
    assert ".expand(" in path.read_text()
