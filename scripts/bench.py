#!/usr/bin/env python3
"""starload benchmark harness (issue 6).

Loads TPC-H lineitem (Parquet, from tpchgen-cli, cached) end to end into the bundled StarRocks
simulator in discard mode, and runs the peers on the same data with the same thread count,
interleaved (for rep: for tool: run), output discarded:

  starload  `starload load` into `starload sim --discard` (the simulator's CPU is reported apart)
  decode    examples/decode_floor.rs: arrow-rs merely decoding every row group (the floor)
  duckdb    COPY (SELECT * FROM read_parquet(...)) TO '/dev/null' (FORMAT CSV)
  polars    scan_parquet(...).sink_csv('/dev/null')
  pyarrow   dataset batches -> pyarrow.csv.CSVWriter on /dev/null
  spark     Spark local[N]: read.parquet(...).write.csv(<dir on /dev/shm>), deleted after

Every run is timed under `/usr/bin/time -v` (peak RSS, user+sys CPU) and with a monotonic clock
(wall). Medians per tool, ratios, a Markdown table, results.json and a PNG chart go to --out.

    python3.11 scripts/bench.py --sf 1 --threads 2 --reps 3
    python3.11 scripts/bench.py --sf 5 --threads 1,2            # both thread counts, one run
    python3.11 scripts/bench.py --memory-check                   # starload peak RSS, SF1 vs SF5
    python3.11 scripts/bench.py --slow-server --sf 1             # back-pressure: delayed commits

Peers come from PyPI (scripts/bench/requirements.txt, pinned) into
$HOME/.cache/starload/bench-venv; the script creates it and re-executes itself inside it.
The starload binary is $CARGO_TARGET_DIR/release/starload (default
$HOME/.cache/starload-target); `--build` builds it, the decode example is built when missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "scripts" / "bench"
REQS = BENCH_DIR / "requirements.txt"
PEERS = BENCH_DIR / "peers.py"
HOME = Path.home()
CACHE = HOME / ".cache" / "starload"
VENV = CACHE / "bench-venv"
TPCH_CACHE = CACHE / "tpch"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", HOME / ".cache" / "starload-target"))
ALL_TOOLS = ["starload", "decode", "duckdb", "polars", "pyarrow", "spark"]
PEER_TOOLS = {"duckdb", "polars", "pyarrow", "spark"}
MB = 1e6  # throughput in decimal megabytes
SIM_PASSWORD = "bench-secret"
RUN_TIMEOUT = 3600


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# venv bootstrap


def reqs_digest() -> str:
    return hashlib.sha256(REQS.read_bytes()).hexdigest()[:16]


def ensure_venv() -> None:
    """Creates/updates the peers' venv, then re-executes this script inside it."""
    py = VENV / "bin" / "python"
    stamp = VENV / ".requirements-digest"
    if sys.prefix == str(VENV) or os.environ.get("STARLOAD_BENCH_IN_VENV") == "1":
        return
    if not py.exists() or not stamp.exists() or stamp.read_text().split()[0] != reqs_digest():
        t0 = time.monotonic()
        if not py.exists():
            log(f"creating venv {VENV}")
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        log(f"installing {REQS.name} into {VENV} (pinned versions from PyPI)")
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(REQS)], check=True)
        stamp.write_text(f"{reqs_digest()} installed_in_s={time.monotonic() - t0:.1f}\n")
        log(f"venv ready in {time.monotonic() - t0:.0f} s")
    env = dict(os.environ, STARLOAD_BENCH_IN_VENV="1")
    os.execve(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]], env)


# --------------------------------------------------------------------------------------------
# measuring a process


def parse_time_v(text: str) -> dict:
    out: dict = {}
    for line in text.splitlines():
        line = line.strip()
        if ":" not in line:
            continue
        k, _, v = line.rpartition(": ")
        v = v.strip()
        if k == "User time (seconds)":
            out["user_s"] = float(v)
        elif k == "System time (seconds)":
            out["sys_s"] = float(v)
        elif k == "Maximum resident set size (kbytes)":
            out["peak_rss_bytes"] = int(v) * 1024
        elif k.startswith("Elapsed (wall clock) time"):
            parts = [float(p) for p in v.split(":")]
            s = 0.0
            for p in parts:
                s = s * 60 + p
            out["time_wall_s"] = s
        elif k == "Exit status":
            out["exit_status"] = int(v)
        elif k == "Percent of CPU this job got":
            out["cpu_percent"] = v
        elif k == "Voluntary context switches":
            out["vol_ctx"] = int(v)
        elif k == "Involuntary context switches":
            out["invol_ctx"] = int(v)
    if "user_s" in out and "sys_s" in out:
        out["cpu_s"] = out["user_s"] + out["sys_s"]
    return out


def proc_children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def proc_status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_s(pid: int) -> float | None:
    """utime+stime of a live process, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """Samples VmRSS of the process /usr/bin/time runs (its child), every `every` seconds."""

    def __init__(self, time_pid: int, every: float = 0.1):
        super().__init__(daemon=True)
        self.time_pid = time_pid
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        target = None
        while not self.stop.is_set():
            if target is None:
                kids = proc_children(self.time_pid)
                target = kids[0] if kids else None
            if target is not None:
                kb = proc_status_kb(target, "VmRSS")
                if kb is None:
                    break
                self.samples.append((round(time.monotonic() - t0, 2), kb * 1024))
            self.stop.wait(self.every)


def timed_run(cmd: list[str], env: dict, label: str, sample_rss: bool = False,
              timeout: float = RUN_TIMEOUT) -> dict:
    """Runs cmd under /usr/bin/time -v; returns wall, CPU, peak RSS, stdout, stderr tail."""
    with tempfile.TemporaryDirectory(prefix="starload-bench-time-") as td:
        tfile = Path(td) / "time.txt"
        ofile = Path(td) / "stdout"
        efile = Path(td) / "stderr"
        full = ["/usr/bin/time", "-v", "-o", str(tfile), *cmd]
        # N threads means N cores: every tool is pinned to the same cores, so
        # helper threads (I/O runtimes, JVM, GC) cannot borrow a spare core.
        cpus = env.get("STARLOAD_BENCH_CPUS")
        if cpus:
            full = ["taskset", "-c", cpus, *full]
        load1 = os.getloadavg()[0]
        with open(ofile, "wb") as so, open(efile, "wb") as se:
            t0 = time.perf_counter()
            p = subprocess.Popen(full, stdout=so, stderr=se, env=env, stdin=subprocess.DEVNULL)
            sampler = RssSampler(p.pid) if sample_rss else None
            if sampler:
                sampler.start()
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
                log(f"{label}: timed out after {timeout} s")
            wall = time.perf_counter() - t0
            if sampler:
                sampler.stop.set()
                sampler.join()
        r = parse_time_v(tfile.read_text() if tfile.exists() else "")
        r.update(wall_s=wall, rc=rc, loadavg_before=round(load1, 2))
        r["stdout"] = ofile.read_text(errors="replace")
        err = efile.read_text(errors="replace")
        r["stderr_tail"] = err[-4000:]
        if sampler:
            r["rss_samples"] = sampler.samples
    return r


def last_json(text: str) -> dict | None:
    """The last JSON object printed on stdout (single line or pretty-printed)."""
    text = text.strip()
    if not text:
        return None
    try:
        v = json.loads(text)
        return v if isinstance(v, dict) else None
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    i = text.rfind("\n{")
    if i >= 0:
        try:
            return json.loads(text[i + 1:])
        except json.JSONDecodeError:
            return None
    return None


# --------------------------------------------------------------------------------------------
# tools and data


def cargo_bin(name: str) -> str | None:
    p = HOME / ".cargo" / "bin" / name
    if p.exists():
        return str(p)
    return shutil.which(name)


def cargo_busy() -> bool:
    r = subprocess.run(["pgrep", "-f", "cargo (build|install|test|run|bench|check)"], capture_output=True, text=True)
    return bool(r.stdout.strip())


def ensure_tpchgen(info: dict) -> str:
    exe = cargo_bin("tpchgen-cli")
    if exe:
        return exe
    if cargo_busy():
        log("waiting for the running cargo command to finish before `cargo install tpchgen-cli`")
        while cargo_busy():
            time.sleep(10)
    log("cargo install tpchgen-cli --locked")
    t0 = time.monotonic()
    subprocess.run(["cargo", "install", "tpchgen-cli", "--locked"], check=True)
    info["tpchgen_install_s"] = round(time.monotonic() - t0, 1)
    exe = cargo_bin("tpchgen-cli")
    if not exe:
        sys.exit("tpchgen-cli not found after cargo install")
    return exe


def parquet_summary(files: list[Path]) -> dict:
    import pyarrow.parquet as pq

    rows = 0
    rgs = 0
    schema = None
    compression = set()
    for f in files:
        md = pq.ParquetFile(f).metadata
        rows += md.num_rows
        rgs += md.num_row_groups
        if md.num_row_groups:
            compression.add(md.row_group(0).column(0).compression)
        if schema is None:
            schema = pq.ParquetFile(f).schema_arrow
    return {
        "files": len(files),
        "parquet_bytes": sum(f.stat().st_size for f in files),
        "rows": rows,
        "row_groups": rgs,
        "compression": sorted(compression),
        "arrow_schema": [{"name": fld.name, "type": str(fld.type), "nullable": fld.nullable} for fld in schema],
    }


def ensure_data(sf: int, info: dict) -> dict:
    """Generates lineitem at scale factor sf (cached) and returns its summary."""
    base = TPCH_CACHE / f"sf{sf}"
    src = base / "lineitem"
    meta_path = base / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        files = sorted(src.glob("*.parquet"))
        if files and len(files) == meta.get("files") and sum(f.stat().st_size for f in files) == meta.get("parquet_bytes"):
            meta["src"] = str(src)
            return meta
        log(f"cache {base} does not match its meta.json; regenerating")
    exe = ensure_tpchgen(info)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    # About 120 MB per file at any scale factor, so SF1 and SF5 differ only in file count.
    parts = max(2, 2 * sf)
    helptext = subprocess.run([exe, "--help"], capture_output=True, text=True).stdout
    if re.search(r"^\s+parquet\b", helptext, re.M):
        cmd = [exe, "parquet", "-s", str(sf), "--tables", "lineitem", "--parts", str(parts), "--output-dir", str(base)]
    else:
        cmd = [exe, "-s", str(sf), "--tables", "lineitem", "--format", "parquet", "--parts", str(parts),
               "--output-dir", str(base)]
    log(" ".join(cmd))
    t0 = time.monotonic()
    subprocess.run(cmd, check=True)
    gen_s = time.monotonic() - t0
    files = sorted(src.glob("*.parquet"))
    if not files:
        # Older versions without --parts sub-directories write <out>/lineitem.parquet.
        single = base / "lineitem.parquet"
        if single.exists():
            src.mkdir(exist_ok=True)
            single.rename(src / "lineitem.parquet")
            files = [src / "lineitem.parquet"]
    if not files:
        sys.exit(f"tpchgen-cli wrote no lineitem parquet under {base}")
    meta = parquet_summary(files)
    meta.update(sf=sf, generator=version, generator_cmd=" ".join(cmd), generate_s=round(gen_s, 1))
    meta_path.write_text(json.dumps(meta, indent=2))
    meta["src"] = str(src)
    return meta


def ensure_csv_bytes(meta: dict, sf: int) -> int:
    """Size of lineitem as CSV (DuckDB's COPY, default dialect), computed once and cached."""
    base = TPCH_CACHE / f"sf{sf}"
    meta_path = base / "meta.json"
    if meta.get("csv_bytes"):
        return meta["csv_bytes"]
    log(f"measuring CSV size of SF{sf} once (DuckDB COPY to a temp file)")
    with tempfile.TemporaryDirectory(prefix="starload-bench-csv-", dir=str(base)) as td:
        out = Path(td) / "lineitem.csv"
        py = VENV / "bin" / "python"
        r = subprocess.run([str(py), str(PEERS), "duckdb", "--src", meta["src"], "--threads", "2", "--dest", str(out)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"measuring CSV size failed: {r.stderr[-2000:]}")
        size = out.stat().st_size
        with open(out, "rb") as f:
            first = f.readline()
        header = len(first) if b"l_orderkey" in first else 0
    stored = json.loads(meta_path.read_text())
    stored["csv_bytes"] = size
    stored["csv_header_bytes"] = header
    meta_path.write_text(json.dumps(stored, indent=2))
    meta["csv_bytes"] = size
    meta["csv_header_bytes"] = header
    return size


# Preferred StarRocks types for lineitem (TPC-H spec), adapted to the Arrow type actually written.
PREFERRED = {
    "l_orderkey": "BIGINT", "l_partkey": "BIGINT", "l_suppkey": "BIGINT", "l_linenumber": "INT",
    "l_quantity": "DECIMAL(15,2)", "l_extendedprice": "DECIMAL(15,2)", "l_discount": "DECIMAL(15,2)",
    "l_tax": "DECIMAL(15,2)", "l_returnflag": "VARCHAR(1)", "l_linestatus": "VARCHAR(1)",
    "l_shipdate": "DATE", "l_commitdate": "DATE", "l_receiptdate": "DATE", "l_shipinstruct": "VARCHAR(25)",
    "l_shipmode": "VARCHAR(10)", "l_comment": "VARCHAR(44)",
}
KEY_COLUMNS = ["l_orderkey", "l_partkey", "l_suppkey", "l_linenumber"]


def sr_type(name: str, arrow_type: str) -> str:
    pref = PREFERRED.get(name)
    t = arrow_type
    if t in ("int64", "uint32"):
        ok = pref in ("BIGINT",)
        return pref if ok else "BIGINT"
    if t in ("int32", "int16", "int8", "uint16", "uint8"):
        return pref if pref in ("INT", "BIGINT") else "INT"
    m = re.fullmatch(r"decimal(?:128|256)?\((\d+),\s*(\d+)\)", t)
    if m:
        p, s = int(m.group(1)), int(m.group(2))
        if pref and pref.startswith("DECIMAL"):
            pp, ps = map(int, re.findall(r"\d+", pref))
            if ps == s and pp >= p:
                return pref
        return f"DECIMAL({p},{s})"
    if t in ("double", "float"):
        return "DOUBLE"
    if t.startswith("date32") or t.startswith("date64"):
        return "DATE"
    if t.startswith("timestamp"):
        return "DATETIME"
    if t in ("string", "large_string", "string_view", "utf8", "large_utf8", "utf8_view") or t.startswith("dictionary"):
        return pref if pref and pref.startswith("VARCHAR") else "VARCHAR(65533)"
    raise SystemExit(f"no StarRocks type for column {name} of Arrow type {t}")


def tables_toml(meta: dict) -> str:
    cols = []
    for f in meta["arrow_schema"]:
        ty = sr_type(f["name"], f["type"])
        nullable = "true" if (f["nullable"] and f["name"] not in KEY_COLUMNS) else "false"
        cols.append(f'  {{ name = "{f["name"]}", type = "{ty}", nullable = {nullable} }},')
    names = [f["name"] for f in meta["arrow_schema"]]
    keys = [k for k in KEY_COLUMNS if k in names]
    # Key columns must be a prefix of the columns.
    n = 0
    while n < len(keys) and names[n] == keys[n]:
        n += 1
    keys = keys[:n] or names[:1]
    return "\n".join([
        "[[tables]]",
        'db = "tpch"',
        'name = "lineitem"',
        'keys = "DUP_KEYS"',
        "key_columns = [" + ", ".join(f'"{k}"' for k in keys) + "]",
        "columns = [",
        *cols,
        "]",
        "",
    ])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"simulator port {port} not ready after {timeout} s")


class Simulator:
    """`starload sim --discard` on free loopback ports; password only in the environment."""

    def __init__(self, starload: str, tables: Path, workdir: Path, faults: Path | None = None,
                 cpus: str | None = None):
        self.fe, self.be, self.mysql = free_port(), free_port(), free_port()
        while len({self.fe, self.be, self.mysql}) < 3:
            self.be, self.mysql = free_port(), free_port()
        cmd = [starload, "sim", "--tables", str(tables), "--discard", "--fe-port", str(self.fe),
               "--be-port", str(self.be), "--mysql-port", str(self.mysql)]
        if faults:
            cmd += ["--faults", str(faults)]
        if cpus:
            # The simulator stands in for a remote server: keep it off the
            # loader's cores.
            cmd = ["taskset", "-c", cpus, *cmd]
        env = dict(os.environ, STARLOAD_SIM_PASSWORD=SIM_PASSWORD)
        # The simulator gets the machine's threads: it stands in for a remote server.
        for k in ("STARLOAD_THREADS", "RAYON_NUM_THREADS", "TOKIO_WORKER_THREADS"):
            env.pop(k, None)
        self.log = open(workdir / f"sim-{self.fe}.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)
        try:
            wait_port(self.fe, self.proc)
            wait_port(self.be, self.proc)
            wait_port(self.mysql, self.proc)
        except Exception:
            self.close()
            raise

    def cpu_s(self) -> float | None:
        return proc_cpu_s(self.proc.pid)

    def peak_rss(self) -> int | None:
        kb = proc_status_kb(self.proc.pid, "VmHWM")
        return kb * 1024 if kb is not None else None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def cpu_list(threads: int) -> str | None:
    """The cores a run with `threads` threads is pinned to (None: all of them)."""
    n = os.cpu_count() or 1
    return None if threads >= n else ("0" if threads == 1 else f"0-{threads - 1}")


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    env.pop("STARLOAD_BENCH_CPUS", None)
    if cpu_list(threads):
        env["STARLOAD_BENCH_CPUS"] = cpu_list(threads)
    env.update(STARLOAD_THREADS=str(threads), RAYON_NUM_THREADS=str(threads), TOKIO_WORKER_THREADS=str(threads),
               POLARS_MAX_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    return env


class Bench:
    def __init__(self, args, info: dict):
        self.args = args
        self.info = info
        self.starload = str(args.starload)
        self.decode = str(args.decode)
        self.workdir = Path(tempfile.mkdtemp(prefix="starload-bench-"))

    def close(self):
        shutil.rmtree(self.workdir, ignore_errors=True)

    def tables_file(self, meta: dict) -> Path:
        p = self.workdir / f"tables-sf{meta['sf']}.toml"
        p.write_text(tables_toml(meta))
        return p

    # ---- one run of each tool --------------------------------------------------------------

    def run_starload(self, meta: dict, threads: int, faults: Path | None = None, extra: list[str] | None = None) -> dict:
        tables = self.tables_file(meta)
        n = os.cpu_count() or 1
        sim_cpus = f"{threads}-{n - 1}" if cpu_list(threads) else None
        sim = Simulator(self.starload, tables, self.workdir, faults, sim_cpus)
        state = Path(tempfile.mkdtemp(prefix="state-", dir=self.workdir))
        try:
            cmd = [self.starload, "load", "--source", meta["src"], "--table", "tpch.lineitem",
                   "--fe", f"http://127.0.0.1:{sim.fe}", "--mysql", f"127.0.0.1:{sim.mysql}", "--user", "root",
                   "--state-dir", str(state), "--json", "--parallel", str(threads * 2), *(extra or [])]
            env = thread_env(threads)
            env["STARROCKS_PASSWORD"] = SIM_PASSWORD
            env.setdefault("RUST_LOG", "warn")
            cpu0 = sim.cpu_s()
            r = timed_run(cmd, env, "starload", sample_rss=True)
            cpu1 = sim.cpu_s()
            r["sim_cpu_s"] = (cpu1 - cpu0) if (cpu0 is not None and cpu1 is not None) else None
            r["sim_peak_rss_bytes"] = sim.peak_rss()
            r["cmd"] = " ".join(cmd)
        finally:
            sim.close()
            shutil.rmtree(state, ignore_errors=True)
        rep = last_json(r["stdout"])
        r["report"] = rep
        if rep:
            load = rep.get("load", rep)
            r["rows"] = load.get("rows_loaded", rep.get("rows_loaded"))
            r["bytes_sent"] = load.get("bytes_sent", rep.get("bytes_sent"))
            r["tool_seconds"] = load.get("seconds", rep.get("seconds"))
            r["chunks"] = load.get("chunks")
            r["retries"] = load.get("retries")
            stages = rep.get("stages") or load.get("stages")
            if isinstance(stages, dict):
                r["stages"] = stages
        r["ok"] = r["rc"] == 0 and rep is not None and r.get("rows") == meta["rows"]
        if r["rc"] == 0 and rep is not None and r.get("rows") != meta["rows"]:
            r["error"] = f"rows_loaded {r.get('rows')} != parquet rows {meta['rows']}"
        return r

    def run_decode(self, meta: dict, threads: int) -> dict:
        cmd = [self.decode, meta["src"], "--threads", str(threads), "--batch-size", "8192"]
        r = timed_run(cmd, thread_env(threads), "decode")
        r["cmd"] = " ".join(cmd)
        out = last_json(r["stdout"]) or {}
        r["report"] = out
        r["rows"] = out.get("rows")
        r["tool_seconds"] = out.get("seconds")
        r["ok"] = r["rc"] == 0 and r["rows"] == meta["rows"]
        return r

    def run_peer(self, tool: str, meta: dict, threads: int) -> dict:
        py = VENV / "bin" / "python"
        cmd = [str(py), str(PEERS), tool, "--src", meta["src"], "--threads", str(threads)]
        env = thread_env(threads)
        env.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=str(py))
        r = timed_run(cmd, env, tool)
        r["cmd"] = " ".join(cmd)
        out = last_json(r["stdout"]) or {}
        r["report"] = out
        r["rows"] = out.get("rows") if out.get("rows") is not None else (meta["rows"] if r["rc"] == 0 and out else None)
        r["tool_seconds"] = out.get("seconds")
        r["setup_s"] = out.get("setup_s")
        r["ok"] = r["rc"] == 0 and bool(out) and r["rows"] == meta["rows"]
        return r

    def run(self, tool: str, meta: dict, threads: int) -> dict:
        if tool == "starload":
            r = self.run_starload(meta, threads)
        elif tool == "decode":
            r = self.run_decode(meta, threads)
        else:
            r = self.run_peer(tool, meta, threads)
        r.update(tool=tool, threads=threads, sf=meta["sf"])
        return r


# --------------------------------------------------------------------------------------------
# summaries


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs: list[dict], meta: dict) -> dict:
    ok = [r for r in runs if r.get("ok")]
    s: dict = {"runs": len(runs), "ok_runs": len(ok)}
    if not ok:
        def last_line(r):
            lines = [x for x in r.get("stderr_tail", "").splitlines() if x.strip()]
            return r.get("error") or (lines[-1] if lines else f"rc={r.get('rc')}")
        s["error"] = next((last_line(r) for r in runs), "no runs")
        return s
    tool = ok[0]["tool"]
    wall = med([r["wall_s"] for r in ok])
    s.update(
        wall_s=wall,
        wall_min_s=min(r["wall_s"] for r in ok),
        wall_max_s=max(r["wall_s"] for r in ok),
        tool_s=med([r.get("tool_seconds") for r in ok]),
        cpu_s=med([r.get("cpu_s") for r in ok]),
        peak_rss_bytes=med([r.get("peak_rss_bytes") for r in ok]),
        peak_rss_max_bytes=max((r.get("peak_rss_bytes") or 0) for r in ok),
        rows=meta["rows"],
        rows_per_s=meta["rows"] / wall,
        parquet_mb_per_s=meta["parquet_bytes"] / MB / wall,
    )
    if tool == "starload":
        sent = med([r.get("bytes_sent") for r in ok])
        s["csv_bytes"] = sent
        s["csv_mb_per_s"] = sent / MB / wall if sent else None
        s["sim_cpu_s"] = med([r.get("sim_cpu_s") for r in ok])
        s["sim_peak_rss_bytes"] = med([r.get("sim_peak_rss_bytes") for r in ok])
        s["chunks"] = ok[0].get("chunks")
        s["retries"] = med([r.get("retries") for r in ok])
        stage_names = sorted({k for r in ok for k in (r.get("stages") or {})})
        if stage_names:
            st = {}
            for k in stage_names:
                vals = [r["stages"].get(k) for r in ok if r.get("stages")]
                nums = [v for v in vals if isinstance(v, (int, float))]
                st[k] = med(nums) if nums else vals[0]
            s["stages"] = st
    elif tool == "decode":
        s["csv_bytes"] = None
        s["csv_mb_per_s"] = None
    else:
        s["csv_bytes"] = meta.get("csv_bytes")
        s["csv_mb_per_s"] = meta["csv_bytes"] / MB / wall if meta.get("csv_bytes") else None
        s["setup_s"] = med([r.get("setup_s") for r in ok])
    return s


TARGETS = {"duckdb": 2.5, "polars": 2.5, "spark": 8.0}


def ratios(summ: dict) -> dict:
    st = summ.get("starload", {})
    out: dict = {}
    if not st.get("wall_s"):
        return out
    for tool, s in summ.items():
        if tool == "starload" or not s.get("wall_s"):
            continue
        if tool == "decode":
            out["starload_time_over_decode_floor"] = st["wall_s"] / s["wall_s"]
        else:
            out[f"starload_vs_{tool}_throughput"] = s["wall_s"] / st["wall_s"]
    return out


def fmt(x, nd=1, scale=1.0, unit=""):
    if x is None:
        return "–"
    return f"{x / scale:.{nd}f}{unit}"


def markdown_table(summ: dict, meta: dict, threads: int) -> str:
    lines = [
        f"lineitem SF{meta['sf']}: {meta['rows']:,} rows, {meta['files']} files, {meta['row_groups']} row groups, "
        f"{meta['parquet_bytes'] / MB:,.0f} MB Parquet, {(meta.get('csv_bytes') or 0) / MB:,.0f} MB CSV (DuckDB); "
        f"{threads} thread(s)",
        "",
        "| tool | runs ok | wall s (median) | min–max | M rows/s | Parquet MB/s | CSV MB/s | CPU s | peak RSS MiB | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool, s in summ.items():
        if not s.get("wall_s"):
            lines.append(f"| {tool} | {s.get('ok_runs', 0)}/{s.get('runs', 0)} | failed | | | | | | | "
                         f"{str(s.get('error', ''))[:120].replace('|', '/').replace(chr(10), ' ')} |")
            continue
        notes = []
        if tool == "starload":
            notes.append(f"sim CPU {fmt(s.get('sim_cpu_s'))} s")
            if s.get("chunks") is not None:
                notes.append(f"{s['chunks']} chunks")
            if s.get("tool_s"):
                notes.append(f"report {s['tool_s']:.1f} s")
        elif tool in PEER_TOOLS and s.get("setup_s") is not None:
            notes.append(f"startup {s['setup_s']:.1f} s, copy {fmt(s.get('tool_s'))} s")
        elif tool == "decode" and s.get("tool_s"):
            notes.append(f"in-process {s['tool_s']:.2f} s")
        lines.append(
            f"| {tool} | {s['ok_runs']}/{s['runs']} | {s['wall_s']:.2f} | {s['wall_min_s']:.2f}–{s['wall_max_s']:.2f} | "
            f"{s['rows_per_s'] / 1e6:.2f} | {s['parquet_mb_per_s']:.0f} | {fmt(s.get('csv_mb_per_s'), 0)} | "
            f"{fmt(s.get('cpu_s'))} | {fmt(s.get('peak_rss_bytes'), 0, 2**20)} | {'; '.join(notes)} |"
        )
    r = ratios(summ)
    if r:
        lines += ["", "| ratio | value | target |", "|---|---|---|"]
        for k, v in r.items():
            tgt = ""
            if k == "starload_time_over_decode_floor":
                tgt = f"≤ 2.0 {'✓' if v <= 2.0 else '✗'}"
            else:
                peer = k[len("starload_vs_"):-len("_throughput")]
                if peer in TARGETS:
                    tgt = f"≥ {TARGETS[peer]} {'✓' if v >= TARGETS[peer] else '✗'}"
            lines.append(f"| {k} | {v:.2f}x | {tgt} |")
    st = summ.get("starload", {})
    if st.get("stages"):
        lines += ["", "| starload stage | median |", "|---|---|"]
        for k, v in st["stages"].items():
            lines.append(f"| {k} | {v:.3f} |" if isinstance(v, (int, float)) else f"| {k} | {v} |")
    if st.get("peak_rss_bytes"):
        rss = st["peak_rss_max_bytes"]
        lines += ["", f"starload peak RSS (max over runs): {rss / 2**20:.0f} MiB "
                      f"({'≤' if rss <= 2**30 else '>'} 1 GiB target)"]
    return "\n".join(lines)


def chart(path: Path, by_threads: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    metrics = [("rows_per_s", 1e6, "M rows/s (median, higher is better)"),
               ("cpu_s", 1, "CPU seconds (user+sys)"),
               ("peak_rss_bytes", 2**20, "peak RSS MiB")]
    thread_keys = sorted(by_threads)
    tools = [t for t in ALL_TOOLS if any(t in by_threads[k]["summary"] for k in thread_keys)]
    width = 0.8 / max(1, len(thread_keys))
    for ax, (key, scale, label) in zip(axes, metrics):
        for j, th in enumerate(thread_keys):
            summ = by_threads[th]["summary"]
            vals = [((summ.get(t) or {}).get(key) or 0) / scale for t in tools]
            xs = [i + (j - (len(thread_keys) - 1) / 2) * width for i in range(len(tools))]
            bars = ax.bar(xs, vals, width, label=f"{th} thread(s)")
            if key == "cpu_s":
                sim = [((summ.get(t) or {}).get("sim_cpu_s") or 0) for t in tools]
                ax.bar(xs, sim, width, bottom=vals, color="lightgray", hatch="//",
                       label="simulator CPU" if j == 0 else None)
            for b, v in zip(bars, vals):
                if v:
                    ax.annotate(f"{v:.2f}" if v < 10 else f"{v:.0f}", (b.get_x() + b.get_width() / 2, v),
                                ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(tools)))
        ax.set_xticklabels(tools, rotation=20)
        ax.set_title(label, fontsize=10)
        ax.margins(y=0.12)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# environment


def versions(args) -> dict:
    v: dict = {"python": platform.python_version()}
    for mod in ("duckdb", "pyarrow", "polars", "pyspark", "matplotlib"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            v[mod] = f"unavailable: {e}"
    try:
        v["starload"] = subprocess.run([str(args.starload), "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    try:
        j = subprocess.run(["java", "-version"], capture_output=True, text=True)
        v["java"] = (j.stderr or j.stdout).splitlines()[0]
    except (OSError, IndexError):
        pass
    try:
        v["rustc"] = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    lock = ROOT / "Cargo.lock"
    if lock.exists():
        m = re.search(r'name = "parquet"\nversion = "([^"]+)"', lock.read_text())
        if m:
            v["parquet (arrow-rs)"] = m.group(1)
    exe = cargo_bin("tpchgen-cli")
    if exe:
        v["tpchgen-cli"] = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    return v


def machine() -> dict:
    m: dict = {"nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                m["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                m["mem_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    m["loadavg_at_start"] = os.getloadavg()
    return m


def ensure_binaries(args, tools: set[str]) -> None:
    env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
    if args.build:
        log("cargo build --release --bin starload --example decode_floor")
        subprocess.run(["cargo", "build", "--release", "--bin", "starload", "--example", "decode_floor"],
                       cwd=ROOT, env=env, check=True)
    if "starload" in tools and not Path(args.starload).exists():
        sys.exit(f"{args.starload} does not exist: build it (CARGO_TARGET_DIR={TARGET} cargo build --release) "
                 f"or pass --build / --starload PATH")
    if "decode" in tools:
        src = ROOT / "examples" / "decode_floor.rs"
        exe = Path(args.decode)
        if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
            log("cargo build --release --example decode_floor")
            subprocess.run(["cargo", "build", "--release", "--example", "decode_floor"], cwd=ROOT, env=env, check=True)


# --------------------------------------------------------------------------------------------
# modes


def mode_compare(args, bench: Bench, info: dict, out: Path) -> dict:
    meta = ensure_data(args.sf, info)
    tools = args.tools
    if any(t in PEER_TOOLS for t in tools):
        ensure_csv_bytes(meta, args.sf)
    log(f"SF{args.sf}: {meta['rows']:,} rows, {meta['files']} files, {meta['parquet_bytes'] / MB:.0f} MB Parquet, "
        f"{(meta.get('csv_bytes') or 0) / MB:.0f} MB CSV")
    runs: list[dict] = []
    for rep in range(args.reps):
        for th in args.threads:
            for tool in tools:
                log(f"rep {rep + 1}/{args.reps} threads={th} {tool} ...")
                r = bench.run(tool, meta, th)
                r["rep"] = rep
                runs.append(r)
                status = "ok" if r.get("ok") else f"FAILED rc={r['rc']} {r.get('error', '')}"
                log(f"  {tool}: {r['wall_s']:.2f} s wall, {fmt(r.get('cpu_s'))} s CPU, "
                    f"{fmt(r.get('peak_rss_bytes'), 0, 2**20)} MiB peak RSS, {status}")
                if not r.get("ok"):
                    log("  stderr: " + r.get("stderr_tail", "")[-1500:])
    by_threads: dict = {}
    md_parts = []
    for th in args.threads:
        summ = {t: summarize([r for r in runs if r["tool"] == t and r["threads"] == th], meta) for t in tools}
        by_threads[th] = {"summary": summ, "ratios": ratios(summ)}
        md_parts.append(markdown_table(summ, meta, th))
    if len(args.threads) > 1 and 1 in by_threads:
        lines = ["| tool | " + " | ".join(f"{th} threads / 1 thread" for th in args.threads if th != 1) + " |",
                 "|---|" + "---|" * (len(args.threads) - 1)]
        for t in tools:
            base = by_threads[1]["summary"].get(t, {}).get("wall_s")
            cells = []
            for th in args.threads:
                if th == 1:
                    continue
                w = by_threads[th]["summary"].get(t, {}).get("wall_s")
                cells.append(f"{base / w:.2f}x" if base and w else "–")
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
        md_parts.append("Thread scaling (throughput ratio; target ≥ 1.8x for starload):\n\n" + "\n".join(lines))
    md = "\n\n".join(md_parts)
    chart(out / f"bench-sf{args.sf}.png", by_threads,
          f"lineitem SF{args.sf}, {args.reps} reps, medians; {machine().get('cpu', '')}, {os.cpu_count()} cores")
    return {"mode": "compare", "data": meta, "by_threads": {str(k): v for k, v in by_threads.items()},
            "runs": runs, "markdown": md, "chart": str(out / f"bench-sf{args.sf}.png")}


def mode_memory(args, bench: Bench, info: dict, out: Path) -> dict:
    metas = {sf: ensure_data(sf, info) for sf in (1, 5)}
    th = args.threads[0]
    runs = []
    for rep in range(args.reps):
        for sf in (1, 5):
            log(f"memory-check rep {rep + 1}/{args.reps} SF{sf} starload ...")
            r = bench.run("starload", metas[sf], th)
            r["rep"] = rep
            runs.append(r)
            log(f"  SF{sf}: {r['wall_s']:.2f} s, peak RSS {fmt(r.get('peak_rss_bytes'), 0, 2**20)} MiB, "
                f"{'ok' if r.get('ok') else 'FAILED ' + r.get('stderr_tail', '')[-800:]}")
    summ = {sf: summarize([r for r in runs if r["sf"] == sf], metas[sf]) for sf in (1, 5)}
    lines = ["| input | rows | Parquet MB | wall s | peak RSS MiB (median) | max | simulator peak RSS MiB |",
             "|---|---|---|---|---|---|---|"]
    for sf in (1, 5):
        s, m = summ[sf], metas[sf]
        lines.append(f"| SF{sf} | {m['rows']:,} | {m['parquet_bytes'] / MB:.0f} | {fmt(s.get('wall_s'), 2)} | "
                     f"{fmt(s.get('peak_rss_bytes'), 0, 2**20)} | {fmt(s.get('peak_rss_max_bytes'), 0, 2**20)} | "
                     f"{fmt(s.get('sim_peak_rss_bytes'), 0, 2**20)} |")
    verdict = ""
    a, b = summ[1].get("peak_rss_bytes"), summ[5].get("peak_rss_bytes")
    if a and b:
        ratio = b / a
        verdict = (f"\nSF5/SF1 peak RSS: {ratio:.2f} ({'within' if abs(ratio - 1) <= 0.2 else 'NOT within'} 20%); "
                   f"max {max(summ[1]['peak_rss_max_bytes'], summ[5]['peak_rss_max_bytes']) / 2**20:.0f} MiB "
                   f"({'≤' if max(summ[1]['peak_rss_max_bytes'], summ[5]['peak_rss_max_bytes']) <= 2**30 else '>'} 1 GiB)")
    md = f"starload peak RSS vs input size ({th} threads, --parallel {th * 2}, default chunk size)\n\n" + "\n".join(lines) + verdict
    return {"mode": "memory-check", "data": {str(k): v for k, v in metas.items()},
            "summary": {str(k): v for k, v in summ.items()}, "runs": runs, "markdown": md}


def mode_slow(args, bench: Bench, info: dict, out: Path) -> dict:
    meta = ensure_data(args.sf, info)
    th = args.threads[0]
    delay = bench.workdir / "faults-delay.toml"
    delay.write_text(f'[[faults]]\nfault = "delay"\nms = {args.delay_ms}\ntimes = 100000\n')
    slow = bench.workdir / "faults-slow-read.toml"
    slow.write_text(f'[[faults]]\nfault = "slow_read"\nbytes_per_sec = {args.read_rate_mb * 1000000}\ntimes = 100000\n')
    kinds = {"normal": None, "reply delayed": delay, "slow reader": slow}
    extra = ["--chunk-bytes", args.slow_chunk_bytes] if args.slow_chunk_bytes else []
    runs = []
    for rep in range(args.reps):
        for kind, faults in kinds.items():
            log(f"slow-server rep {rep + 1}/{args.reps} {kind} ...")
            r = bench.run_starload(meta, th, faults, extra)
            r.update(tool="starload", threads=th, sf=args.sf, rep=rep, kind=kind)
            runs.append(r)
            log(f"  {kind}: {r['wall_s']:.2f} s, peak RSS {fmt(r.get('peak_rss_bytes'), 0, 2**20)} MiB, "
                f"{'ok' if r.get('ok') else 'FAILED ' + r.get('stderr_tail', '')[-800:]}")
    summ = {k: summarize([r for r in runs if r["kind"] == k], meta) for k in kinds}
    lines = ["| server | wall s | chunks | peak RSS MiB (median) | max | RSS samples (MiB, every 0.1 s, last run) |",
             "|---|---|---|---|---|---|"]
    for k in kinds:
        s = summ[k]
        last = [r for r in runs if r["kind"] == k][-1]
        samples = [v for _, v in last.get("rss_samples", [])]
        spark_line = ""
        if samples:
            step = max(1, len(samples) // 12)
            spark_line = " ".join(f"{v / 2**20:.0f}" for v in samples[::step])
        lines.append(f"| {k} | {fmt(s.get('wall_s'), 2)} | {s.get('chunks', '–')} | "
                     f"{fmt(s.get('peak_rss_bytes'), 0, 2**20)} | {fmt(s.get('peak_rss_max_bytes'), 0, 2**20)} | {spark_line} |")
    md = (f"Back-pressure, SF{args.sf}, {th} threads, --parallel {th * 2}: `reply delayed` holds every Stream Load "
          f"reply {args.delay_ms} ms after reading the body; `slow reader` reads each body at {args.read_rate_mb} MB/s"
          f"{', --chunk-bytes ' + args.slow_chunk_bytes if args.slow_chunk_bytes else ''}\n\n" + "\n".join(lines))
    return {"mode": "slow-server", "data": meta, "summary": summ, "runs": runs, "markdown": md}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sf", type=int, default=5, choices=[1, 5], help="TPC-H scale factor (default 5)")
    ap.add_argument("--threads", default="2", help="threads for every tool: 1, 2 or 1,2 (default 2)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tools", default=",".join(ALL_TOOLS), help=f"subset of {','.join(ALL_TOOLS)}")
    ap.add_argument("--out", default=str(ROOT / "target" / "bench"))
    ap.add_argument("--memory-check", action="store_true", help="starload peak RSS at SF1 and SF5")
    ap.add_argument("--slow-server", action="store_true", help="starload against a simulator that delays replies")
    ap.add_argument("--delay-ms", type=int, default=500, help="--slow-server delay per Stream Load (default 500)")
    ap.add_argument("--read-rate-mb", type=int, default=20, help="--slow-server: body read rate per load, MB/s")
    ap.add_argument("--slow-chunk-bytes", default=None, help="--slow-server: --chunk-bytes for both runs (e.g. 32MiB)")
    ap.add_argument("--starload", default=str(TARGET / "release" / "starload"))
    ap.add_argument("--decode", default=str(TARGET / "release" / "examples" / "decode_floor"))
    ap.add_argument("--build", action="store_true", help="cargo build --release the binary and the example first")
    args = ap.parse_args()
    args.threads = [int(t) for t in args.threads.split(",")]
    for t in args.threads:
        if t not in (1, 2):
            ap.error("--threads takes 1, 2 or 1,2")
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    bad = [t for t in args.tools if t not in ALL_TOOLS]
    if bad:
        ap.error(f"unknown tools {bad}; choose from {ALL_TOOLS}")

    ensure_venv()  # re-executes inside the venv when needed

    info: dict = {}
    stamp = VENV / ".requirements-digest"
    if stamp.exists():
        m = re.search(r"installed_in_s=([\d.]+)", stamp.read_text())
        if m:
            info["venv_install_s"] = float(m.group(1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mode_tools = {"starload"} if (args.memory_check or args.slow_server) else set(args.tools)
    ensure_binaries(args, mode_tools)
    bench = Bench(args, info)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        if args.memory_check:
            res = mode_memory(args, bench, info, out)
            name = "memory-check"
        elif args.slow_server:
            res = mode_slow(args, bench, info, out)
            name = f"slow-server-sf{args.sf}"
        else:
            res = mode_compare(args, bench, info, out)
            name = f"bench-sf{args.sf}"
    finally:
        bench.close()
    res.update(started=started, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), argv=sys.argv[1:],
               command="python3.11 scripts/bench.py " + " ".join(sys.argv[1:]), machine=machine(),
               versions=versions(args), install=info, reps=args.reps, threads=args.threads)
    (out / f"{name}.json").write_text(json.dumps(res, indent=2, default=str))
    (out / f"{name}.md").write_text(res["markdown"] + "\n")
    print(res["markdown"])
    print(f"\nresults: {out / (name + '.json')}" + (f", chart: {res['chart']}" if res.get("chart") else ""))


if __name__ == "__main__":
    main()
