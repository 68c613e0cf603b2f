"""One peer run for scripts/bench.py: Parquet -> CSV with a given thread count, output discarded.

    python peers.py TOOL --src DIR --threads N [--dest PATH]

TOOL is duckdb, polars, pyarrow or spark. Runs in the bench venv, under /usr/bin/time -v (the
harness measures wall, CPU and peak RSS of this whole process: interpreter start, imports and,
for Spark, the JVM). Prints one JSON line on stdout: rows (when the tool reports them), seconds
of the copy itself, and setup seconds (imports, session start).
"""

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

T0 = time.perf_counter()


def files_of(src):
    files = sorted(glob.glob(os.path.join(src, "**", "*.parquet"), recursive=True))
    if not files:
        sys.exit(f"peers.py: no .parquet files under {src}")
    return files


def run_duckdb(src, threads, dest):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    setup = time.perf_counter()
    pattern = os.path.join(src, "*.parquet")
    # COPY returns the number of rows written.
    r = con.execute(
        f"COPY (SELECT * FROM read_parquet('{pattern}')) TO '{dest}' (FORMAT CSV)"
    ).fetchone()
    end = time.perf_counter()
    return {"rows": int(r[0]) if r and r[0] is not None else None, "setup_s": setup - T0, "seconds": end - setup,
            "version": duckdb.__version__}


def run_polars(src, threads, dest):
    # POLARS_MAX_THREADS must be set before the import (the harness sets it in the environment).
    os.environ.setdefault("POLARS_MAX_THREADS", str(threads))
    import polars as pl

    setup = time.perf_counter()
    lf = pl.scan_parquet(os.path.join(src, "*.parquet"))
    how = "sink_csv"
    try:
        lf.sink_csv(dest)
    except Exception as e:  # old polars without a streaming CSV sink for this plan
        how = f"collect+write_csv ({type(e).__name__}: {e})"
        lf.collect().write_csv(dest)
    end = time.perf_counter()
    return {"rows": None, "setup_s": setup - T0, "seconds": end - setup, "how": how,
            "threads_used": pl.thread_pool_size(), "version": pl.__version__}


def run_pyarrow(src, threads, dest):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds

    pa.set_cpu_count(int(threads))
    pa.set_io_thread_count(int(threads))
    setup = time.perf_counter()
    dataset = ds.dataset(files_of(src), format="parquet")
    # pyarrow's CSV writer has no string_view support (tpchgen-cli writes Utf8View); read those
    # columns as plain strings instead, a cast the scanner does while decoding.
    fields = [pa.field(f.name, pa.string() if f.type == pa.string_view() else
                       pa.binary() if f.type == pa.binary_view() else f.type, f.nullable)
              for f in dataset.schema]
    schema = pa.schema(fields)
    cast_views = schema != dataset.schema
    if cast_views:
        dataset = ds.dataset(files_of(src), format="parquet", schema=schema)
    rows = 0
    with open(dest, "wb") as sink:
        writer = None
        for batch in dataset.to_batches(use_threads=True):
            if writer is None:
                writer = pacsv.CSVWriter(sink, batch.schema)
            writer.write_batch(batch)
            rows += batch.num_rows
        if writer is not None:
            writer.close()
    end = time.perf_counter()
    return {"rows": rows, "setup_s": setup - T0, "seconds": end - setup, "cast_string_view": cast_views,
            "cpu_count": pa.cpu_count(), "io_threads": pa.io_thread_count(), "version": pa.__version__}


def run_spark(src, threads, dest):
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    import pyspark
    from pyspark.sql import SparkSession

    n = int(threads)
    spark = (
        SparkSession.builder.master(f"local[{n}]")
        .appName("starload-bench")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Bound the JVM's own GC/JIT threads to the same core count as the tasks.
        .config("spark.driver.extraJavaOptions", f"-XX:ActiveProcessorCount={n}")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    gateway_proc = getattr(spark.sparkContext._gateway, "proc", None)
    setup = time.perf_counter()
    out = dest
    spark.read.parquet(src).write.mode("overwrite").csv(out)
    end = time.perf_counter()
    out_bytes = 0
    for root, _, names in os.walk(out):
        for name in names:
            if name.startswith("part-"):
                out_bytes += os.path.getsize(os.path.join(root, name))
    spark.stop()
    # Let the JVM exit and reap it, so its CPU time and RSS count in this process's rusage.
    if gateway_proc is not None:
        try:
            gateway_proc.stdin.close()
        except Exception:
            pass
        try:
            gateway_proc.wait(timeout=30)
        except Exception:
            gateway_proc.kill()
            gateway_proc.wait()
    return {"rows": None, "setup_s": setup - T0, "seconds": end - setup, "csv_bytes_written": out_bytes,
            "version": pyspark.__version__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool", choices=["duckdb", "polars", "pyarrow", "spark"])
    ap.add_argument("--src", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--dest", default=None, help="CSV output (default /dev/null; Spark: a fresh dir on /dev/shm)")
    a = ap.parse_args()
    tmp = None
    if a.tool == "spark":
        if a.dest is None:
            base = "/dev/shm" if os.path.isdir("/dev/shm") else None
            tmp = tempfile.mkdtemp(prefix="starload-bench-spark-", dir=base)
            dest = os.path.join(tmp, "out")
        else:
            dest = a.dest
    else:
        dest = a.dest or "/dev/null"
    try:
        fn = {"duckdb": run_duckdb, "polars": run_polars, "pyarrow": run_pyarrow, "spark": run_spark}[a.tool]
        r = fn(a.src, a.threads, dest)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    r["tool"] = a.tool
    r["threads"] = a.threads
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
