#!/usr/bin/env python3
"""Source benchmarks (issue 3): listing scale, and read throughput per store.

  listing  100,000 Parquet files in 1,000 Hive partitions (dt=...) on local disk;
           `starload plan` (list, every footer, chunks, labels; the simulator answers
           the schema check) timed end to end, and the same plan with a `--where` on the
           partition column that prunes to 10 partitions before listing them.
  read     TPC-H lineitem SF1 (tpchgen-cli, cached by scripts/bench.py) from local disk,
           SeaweedFS (S3) and MiniDFS (HDFS), read through starload's own scan path
           (examples/source_read.rs: list, footers, DataFusion scan of every row group,
           no encoding), interleaved local, s3, hdfs per repetition.

    scripts/bench_sources.py [--reps 3] [--only listing,read]

The read part needs the test servers (scripts/servers/up.sh; this script starts them when
$STARLOAD_SERVERS_DIR/servers.env is missing and stops what it started). Release binaries
come from $CARGO_TARGET_DIR (default ~/.cache/starload-target) and are built when missing.
Prints Markdown tables; details go to ~/.cache/starload/bench-sources/results.json.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/starload-target"))
STARLOAD = TARGET / "release/starload"
READER = TARGET / "release/examples/source_read"
CACHE = Path.home() / ".cache/starload"
WORK = CACHE / "bench-sources"
PASSWORD = "bench-secret"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def python():
    venv = CACHE / "venv/bin/python"
    return str(venv) if venv.exists() else sys.executable


def timed(cmd, env=None):
    t = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-v", *map(str, cmd)], capture_output=True, text=True, env=env)
    wall = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    rss = next((int(x.split(":")[1]) for x in p.stderr.splitlines() if "Maximum resident set size" in x), 0)
    return wall, rss * 1024, p.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_binaries():
    if not STARLOAD.exists() or not READER.exists():
        log("cargo build --release --bin starload --example source_read")
        subprocess.run(["cargo", "build", "--release", "--bin", "starload", "--example", "source_read"], cwd=ROOT,
                       check=True, env=dict(os.environ, CARGO_TARGET_DIR=str(TARGET)))


# ---------------------------------------------------------------------------------------------
# listing


def make_listing_dataset(root: Path, partitions: int, per: int):
    done = root / ".done"
    if done.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    seed = root.parent / "seed.parquet"
    subprocess.run([python(), "-c", f"""
import pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({{"id": pa.array(range(10), pa.int64()), "v": pa.array([str(i) for i in range(10)])}}),
               "{seed}")
"""], check=True)
    data = seed.read_bytes()
    t = time.monotonic()
    for p in range(partitions):
        d = root / f"dt={p:04d}"
        d.mkdir()
        for f in range(per):
            (d / f"part-{f:05d}.parquet").write_bytes(data)
    (root / "_SUCCESS").touch()
    done.touch()
    log(f"wrote {partitions * per} files in {partitions} partitions in {time.monotonic() - t:.0f} s")


def bench_listing(reps):
    partitions, per = 1000, 100
    ds = WORK / "listing" / "data"
    make_listing_dataset(ds, partitions, per)
    tables = WORK / "listing" / "tables.toml"
    tables.write_text("""[[tables]]
db = "bench"
name = "listing"
keys = "DUP_KEYS"
key_columns = ["id"]
columns = [
  { name = "id", type = "BIGINT" },
  { name = "v", type = "VARCHAR(20)" },
  { name = "dt", type = "VARCHAR(8)" },
]
""")
    fe, be, my = free_port(), free_port(), free_port()
    env = dict(os.environ, STARLOAD_SIM_PASSWORD=PASSWORD, STARROCKS_PASSWORD=PASSWORD, RUST_LOG="warn")
    sim = subprocess.Popen([STARLOAD, "sim", "--tables", tables, "--fe-port", str(fe), "--be-port", str(be),
                            "--mysql-port", str(my), "--discard"], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", my), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        base = [STARLOAD, "plan", "--source", ds, "--table", "bench.listing", "--fe", f"http://127.0.0.1:{fe}",
                "--mysql", f"127.0.0.1:{my}", "--user", "root", "--state-dir", WORK / "listing" / "state", "--json"]
        runs = {"all": [], "pruned": []}
        for rep in range(reps):
            for kind in runs:
                cmd = base + (["--where", "dt >= '0100' AND dt < '0110'"] if kind == "pruned" else [])
                wall, rss, out = timed(cmd, env)
                rep_json = json.loads(out)
                files = len(rep_json.get("files", [])) if isinstance(rep_json.get("files"), list) else rep_json.get("files")
                runs[kind].append({"wall_s": wall, "rss": rss, "files": files,
                                   "chunks": len(rep_json.get("chunks", [])) if isinstance(rep_json.get("chunks"), list)
                                   else rep_json.get("chunks")})
                log(f"listing rep {rep + 1} {kind}: {wall:.2f} s, {files} files, peak RSS {rss / 2**20:.0f} MiB")
    finally:
        sim.terminate()
        sim.wait()
    out = []
    for kind, rs in runs.items():
        out.append({"kind": kind, "files": rs[0]["files"], "chunks": rs[0]["chunks"],
                    "median_s": statistics.median(r["wall_s"] for r in rs),
                    "min_s": min(r["wall_s"] for r in rs), "max_s": max(r["wall_s"] for r in rs),
                    "peak_rss_mib": max(r["rss"] for r in rs) / 2**20})
    return out


# ---------------------------------------------------------------------------------------------
# read throughput


def servers_env():
    d = Path(os.environ.get("STARLOAD_SERVERS_DIR", CACHE / "servers"))
    started = False
    envf = d / "servers.env"
    if not envf.exists():
        log("starting the test servers (scripts/servers/up.sh)")
        subprocess.run([ROOT / "scripts/servers/up.sh"], check=True, env=dict(os.environ, STARLOAD_SERVERS_DIR=str(d)))
        started = True
    env = {}
    for line in envf.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            env[k] = v.strip("'\"")
    return env, started, d


def bench_read(reps):
    meta = CACHE / "tpch/sf1/meta.json"
    if not meta.exists():
        raise SystemExit("lineitem SF1 missing: run `scripts/bench.py --sf 1 --tools decode --reps 1` once")
    local = CACHE / "tpch/sf1/lineitem"
    senv, started, sdir = servers_env()
    try:
        env = dict(os.environ, STARLOAD_S3_ENDPOINT=senv["STARLOAD_TEST_S3_ENDPOINT"],
                   AWS_ACCESS_KEY_ID=senv.get("STARLOAD_TEST_S3_ACCESS_KEY", "testkey"),
                   AWS_SECRET_ACCESS_KEY=senv.get("STARLOAD_TEST_S3_SECRET_KEY", "testsecret"),
                   STARLOAD_THREADS="2")
        bucket = "starload-bench"  # SeaweedFS creates a bucket on its first write
        urls = {"local": str(local),
                "s3": f"s3://{bucket}/bench/lineitem-sf1",
                "hdfs": f"{senv['STARLOAD_TEST_HDFS'].rstrip('/')}/bench/lineitem-sf1"}
        for kind in ("s3", "hdfs"):
            wall, _, out = timed([READER, "put", local, urls[kind]], env)
            log(f"put {kind}: {out.strip()}")
        runs = {k: [] for k in urls}
        for rep in range(reps):
            for kind, url in urls.items():
                wall, rss, out = timed([READER, "read", url], env)
                r = json.loads(out.strip().splitlines()[-1])
                r.update(wall_s=wall, rss=rss)
                runs[kind].append(r)
                log(f"read rep {rep + 1} {kind}: {wall:.2f} s, {r['rows']:,} rows, {r['parquet_mb_per_s']} MB/s")
        out = []
        for kind, rs in runs.items():
            assert len({r["rows"] for r in rs}) == 1
            med = statistics.median(r["wall_s"] for r in rs)
            out.append({"store": kind, "url": urls[kind], "rows": rs[0]["rows"], "parquet_bytes": rs[0]["parquet_bytes"],
                        "median_s": med, "min_s": min(r["wall_s"] for r in rs), "max_s": max(r["wall_s"] for r in rs),
                        "mb_per_s": rs[0]["parquet_bytes"] / 1e6 / med,
                        "plan_s": statistics.median(r["plan_s"] for r in rs),
                        "peak_rss_mib": max(r["rss"] for r in rs) / 2**20})
        return out
    finally:
        if started:
            subprocess.run([ROOT / "scripts/servers/down.sh"], env=dict(os.environ, STARLOAD_SERVERS_DIR=str(sdir)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="listing,read")
    a = ap.parse_args()
    ensure_binaries()
    WORK.mkdir(parents=True, exist_ok=True)
    res = {}
    parts = a.only.split(",")
    if "listing" in parts:
        res["listing"] = bench_listing(a.reps)
    if "read" in parts:
        res["read"] = bench_read(a.reps)
    (WORK / "results.json").write_text(json.dumps(res, indent=2))
    if "listing" in res:
        print("\n`starload plan` over 100,000 files in 1,000 partitions (local disk), "
              f"median of {a.reps}:\n")
        print("| plan | files | chunks | wall s (median) | min–max | peak RSS MiB |\n|---|---|---|---|---|---|")
        for r in res["listing"]:
            print(f"| {r['kind']} | {r['files']} | {r['chunks']} | {r['median_s']:.2f} | {r['min_s']:.2f}–{r['max_s']:.2f} "
                  f"| {r['peak_rss_mib']:.0f} |")
    if "read" in res:
        print(f"\nRead throughput, lineitem SF1 through starload's scan path, 2 threads, median of {a.reps}:\n")
        print("| store | rows | Parquet MB | wall s (median) | min–max | MB/s | list+footers s | peak RSS MiB |\n"
              "|---|---|---|---|---|---|---|---|")
        for r in res["read"]:
            print(f"| {r['store']} | {r['rows']:,} | {r['parquet_bytes'] / 1e6:.0f} | {r['median_s']:.2f} | "
                  f"{r['min_s']:.2f}–{r['max_s']:.2f} | {r['mb_per_s']:.0f} | {r['plan_s']:.2f} | {r['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    main()
