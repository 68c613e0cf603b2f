"""StarloadOperator: run the ``starload`` CLI from an Airflow task.

The operator builds a ``starload load|plan ... --json`` command line, runs it as a
subprocess, streams its stderr (the CLI's logs) into the task log, parses the JSON
report printed on stdout and returns it, so it lands in XCom as ``return_value``.

The StarRocks password never goes on the command line: it is read at run time from an
Airflow Connection (``password_conn_id``) or from an environment variable of the worker
(``password_env``) and handed to the CLI as ``STARROCKS_PASSWORD`` in the subprocess
environment only. It is registered with Airflow's secrets masker and additionally
scrubbed from every line this operator logs, raises or returns.

Exit codes of the CLI map onto Airflow's retry semantics:

====  ==========================================  ==========================
code  meaning                                     task outcome
====  ==========================================  ==========================
0     success                                     success, report -> XCom
2     configuration or schema error               ``AirflowFailException``
3     data error                                  ``AirflowFailException``
5     verification mismatch                       ``AirflowFailException``
4     infrastructure failure after retries        ``AirflowException``
1     internal error (and any other code/signal)  ``AirflowException``
====  ==========================================  ==========================

``AirflowFailException`` fails the task at once, without using the task's retries:
re-running cannot fix a bad job file or bad data. ``AirflowException`` lets Airflow
retry; a retry re-runs the same job, and the CLI's journal makes it resume where the
previous attempt stopped (committed chunks are skipped).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar

from starload_airflow._compat import (
    AirflowException,
    AirflowFailException,
    BaseHook,
    BaseOperator,
    mask_secret,
)

#: What each documented exit code of the CLI means.
EXIT_CODE_MEANINGS: dict[int, str] = {
    0: "success",
    1: "internal error",
    2: "configuration or schema error",
    3: "data error",
    4: "infrastructure failure after retries (a retry resumes from the journal)",
    5: "verification mismatch",
}

#: Exit codes that fail the task without retrying: fix the data or the job file.
NO_RETRY_EXIT_CODES = frozenset({2, 3, 5})

#: Environment variable the CLI reads the StarRocks password from.
PASSWORD_ENV_VAR = "STARROCKS_PASSWORD"

#: Environment variable naming the starload binary when ``binary`` is not given.
BINARY_ENV_VAR = "STARLOAD_BIN"

MODES = ("load", "plan", "finalize")

_REDACTED = "***"

# ANSI escape sequences (colours), in case the CLI's logger emits them.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


_URL_USERINFO = re.compile(r"(://)[^\s@/:]*:(?!\d+(?:[/?#\s]|$))[^\s@]*@")


def display_command(argv: Sequence[str]) -> str:
    """A shell-like rendering of argv for the log, quoting only the values of ``--flag=value``."""
    parts = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if eq and flag.startswith("--") and re.fullmatch(r"--[a-z][a-z0-9-]*", flag):
            parts.append(f"{flag}={_quote(value)}")
        else:
            parts.append(_quote(arg))
    return " ".join(parts)


def _quote(text: str) -> str:
    if text and re.fullmatch(r"[\w@%+=:,./-]+", text):
        return text
    if "'" not in text:
        return shlex.quote(text)
    escaped = re.sub(r'([\\"$`])', r"\\\1", text)
    return f'"{escaped}"'


def exception_for_exit_code(returncode: int, reason: str, mode: str = "load") -> AirflowException:
    """Return the exception a non-zero exit code of ``starload <mode>`` maps to."""
    if returncode < 0:
        meaning = f"killed by signal {-returncode}"
    else:
        meaning = EXIT_CODE_MEANINGS.get(returncode, "unknown exit code")
    message = f"starload {mode} failed with exit code {returncode} ({meaning}): {reason}"
    if returncode in NO_RETRY_EXIT_CODES:
        return AirflowFailException(message)
    return AirflowException(message)


def failure_reason(stderr_lines: Sequence[str]) -> str:
    """The CLI's one-line reason: its last ``starload: ...`` stderr line."""
    for line in reversed(stderr_lines):
        if line.startswith("starload: "):
            return line[len("starload: ") :].strip()
    for line in reversed(stderr_lines):
        if line.strip():
            return line.strip()
    return "no reason given on stderr"


class StarloadOperator(BaseOperator):
    """Load a Hive/Parquet dataset into StarRocks with the ``starload`` CLI.

    :param config: path of the job file (TOML). Templated.
    :param mode: ``"load"`` (default), ``"plan"`` (prints the plan, sends nothing) or ``"finalize"`` (after ``--shard i/n`` loads: verify and, for overwrite, swap; pass ``--shards n`` in ``extra_args``).
    :param source: override of the job file's ``source``. Templated.
    :param table: override of ``table`` (``db.table``). Templated.
    :param fe: override of ``fe`` (FE HTTP URL).
    :param mysql: override of ``mysql`` (FE MySQL ``host:port``).
    :param user: override of ``user``.
    :param state_dir: override of ``state_dir`` (where the journals live). Templated.
    :param where: SQL filter over source and partition columns, e.g.
        ``"dt = '{{ ds }}'"``. Templated.
    :param select: SQL select list over the table ``source``. Templated.
    :param clock: the instant ``now()`` and ``current_date()`` read in ``where``/``select``
        (RFC 3339), e.g. ``"{{ data_interval_end }}"``: a rerun or a retry of the task keeps
        the rows of its data interval. Without it, the job's start (kept by its journal);
        shards of a transform that reads the clock need it. Templated.
    :param chunk_bytes: target encoded size of one Stream Load (``"256MiB"`` or bytes).
    :param parallel: Stream Loads in flight.
    :param extra_args: further CLI arguments, appended before ``--json``. Templated.
    :param password_conn_id: Airflow Connection whose password is the StarRocks password.
    :param password_env: environment variable (on the worker) holding the password.
    :param binary: path of the ``starload`` binary; default ``$STARLOAD_BIN`` or
        ``starload`` on ``PATH``.
    :param env: extra environment variables for the CLI (e.g. object-store settings).
    :param cwd: working directory of the CLI.

    Returns the CLI's JSON report (``load``) or plan (``plan``) as a dict, which Airflow
    pushes to XCom as ``return_value``.
    """

    template_fields: Sequence[str] = (
        "config",
        "source",
        "table",
        "state_dir",
        "where",
        "select",
        "clock",
        "extra_args",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"where": "sql", "select": "sql"}
    ui_color = "#e8f4ff"

    def __init__(
        self,
        *,
        config: str | None = None,
        mode: str = "load",
        source: str | None = None,
        table: str | None = None,
        fe: str | None = None,
        mysql: str | None = None,
        user: str | None = None,
        state_dir: str | None = None,
        where: str | None = None,
        select: str | None = None,
        clock: str | None = None,
        chunk_bytes: int | str | None = None,
        parallel: int | None = None,
        extra_args: Sequence[str] | None = None,
        password_conn_id: str | None = None,
        password_env: str | None = None,
        binary: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if password_conn_id and password_env:
            raise ValueError("give password_conn_id or password_env, not both")
        self.config = config
        self.mode = mode
        self.source = source
        self.table = table
        self.fe = fe
        self.mysql = mysql
        self.user = user
        self.state_dir = state_dir
        self.where = where
        self.select = select
        self.clock = clock
        self.chunk_bytes = chunk_bytes
        self.parallel = parallel
        self.extra_args = list(extra_args) if extra_args is not None else None
        self.password_conn_id = password_conn_id
        self.password_env = password_env
        self.binary = binary
        self.env = dict(env) if env else None
        self.cwd = cwd
        self._secrets: list[str] = []
        self._proc: subprocess.Popen | None = None

    # ---------------------------------------------------------------- building blocks

    def resolve_binary(self) -> str:
        """The binary to run: ``binary``, else ``$STARLOAD_BIN``, else ``starload`` on PATH."""
        candidate = self.binary or os.environ.get(BINARY_ENV_VAR) or "starload"
        if os.sep in candidate:
            if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
                raise AirflowFailException(f"starload binary {candidate!r} is not an executable file")
            return candidate
        found = shutil.which(candidate)
        if not found:
            raise AirflowFailException(
                f"starload binary {candidate!r} not found on PATH; set the operator's `binary` or ${BINARY_ENV_VAR}"
            )
        return found

    def build_command(self, binary: str) -> list[str]:
        """The argv of the CLI. It never contains the password."""
        argv = [binary, self.mode]
        options = (
            ("--config", self.config),
            ("--source", self.source),
            ("--table", self.table),
            ("--fe", self.fe),
            ("--mysql", self.mysql),
            ("--user", self.user),
            ("--state-dir", self.state_dir),
            ("--where", self.where),
            ("--select", self.select),
            ("--clock", self.clock),
            ("--chunk-bytes", self.chunk_bytes),
            ("--parallel", self.parallel),
        )
        for flag, value in options:
            if value is not None:
                # `--flag=value` so that a value starting with `-` stays a value.
                argv.append(f"{flag}={value}")
        argv.extend(str(arg) for arg in self.extra_args or ())
        argv.append("--json")
        return argv

    def get_password(self) -> str | None:
        """Read the password from the Connection or the environment variable, if set."""
        if self.password_conn_id:
            conn = BaseHook.get_connection(self.password_conn_id)
            password = conn.password
            if not password:
                raise AirflowFailException(f"connection {self.password_conn_id!r} has no password")
        elif self.password_env:
            password = os.environ.get(self.password_env)
            if not password:
                raise AirflowFailException(f"environment variable {self.password_env!r} is not set or empty")
        else:
            return None
        mask_secret(password)
        self._secrets.append(password)
        return password

    def build_env(self, password: str | None) -> dict[str, str]:
        env = dict(os.environ)
        # The CLI's logger colours its output unless NO_COLOR is set; task logs are no TTY.
        env.setdefault("NO_COLOR", "1")
        if self.env:
            env.update({str(k): str(v) for k, v in self.env.items()})
        if password is not None:
            env[PASSWORD_ENV_VAR] = password
        return env

    def redact(self, value: Any) -> Any:
        """Replace every known secret in ``value`` (str, or nested dict/list) with ``***``."""
        if isinstance(value, str):
            for secret in self._secrets:
                if secret:
                    value = value.replace(secret, _REDACTED)
            # Credentials written into a URL (which the CLI refuses, after
            # this line is logged): `scheme://user:password@host`.
            return _URL_USERINFO.sub(r"\1***@", value)
        if isinstance(value, dict):
            return {self.redact(k): self.redact(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact(v) for v in value]
        return value

    # ---------------------------------------------------------------------- execution

    def execute(self, context: Any) -> dict[str, Any]:
        binary = self.resolve_binary()
        password = self.get_password()
        argv = self.build_command(binary)
        self.log.info("Running: %s", self.redact(display_command(argv)))

        stdout_chunks: list[str] = []
        stderr_tail: deque[str] = deque(maxlen=200)
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.build_env(password),
            cwd=self.cwd,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._proc = proc
        # stdout (the JSON report) is collected by a thread; stderr (the logs) is read
        # here, in the task's thread, so log records are emitted from the main thread.
        reader = threading.Thread(target=lambda: stdout_chunks.append(proc.stdout.read()), daemon=True)
        reader.start()
        try:
            for raw in proc.stderr:
                line = self.redact(_ANSI.sub("", raw.rstrip("\r\n")))
                stderr_tail.append(line)
                self.log.info("%s", line)
            returncode = proc.wait()
            reader.join()
        finally:
            if proc.poll() is None:  # interrupted (timeout, kill): stop the CLI too
                self._terminate(proc)
            self._proc = None

        stdout = self.redact("".join(stdout_chunks))
        report = self._parse_json(stdout)
        if returncode != 0:
            if report is not None:
                self.log.info("starload report: %s", json.dumps(report, sort_keys=True))
            raise exception_for_exit_code(returncode, failure_reason(list(stderr_tail)), self.mode)
        if report is None:
            raise AirflowException(f"starload {self.mode} exited 0 but printed no JSON on stdout: {stdout[:500]!r}")
        if self.mode == "load":
            self.log.info(
                "starload load %s: %s rows loaded, %s chunks loaded, %s chunks skipped, %s retries, %.1fs",
                report.get("status"),
                report.get("rows_loaded"),
                report.get("chunks_loaded"),
                report.get("chunks_skipped"),
                report.get("retries"),
                float(report.get("seconds") or 0.0),
            )
        return report

    def on_kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self.log.info("Stopping starload (pid %s)", proc.pid)
            self._terminate(proc)

    @staticmethod
    def _terminate(proc: subprocess.Popen) -> None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @staticmethod
    def _parse_json(stdout: str) -> dict[str, Any] | None:
        text = stdout.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
