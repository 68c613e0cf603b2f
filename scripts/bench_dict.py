#!/usr/bin/env python3
"""Global dictionary builds: starload vs DuckDB, on TPC-H SF5 columns and a
synthetic column of 50 million distinct strings.

For every column it times, interleaved A B A B (3 repetitions each):

  full         build a dictionary from nothing:
               starload: examples/dict_build (reads the Parquet input, dedupes,
                         sorts, writes the delta file and manifest)
               DuckDB:   COPY (SELECT v, row_number() OVER (ORDER BY v)
                               FROM (SELECT DISTINCT v FROM input)) TO parquet
  incremental  extend a dictionary that already holds 80% of the distinct
               values (built beforehand, not timed) with the whole input:
               DuckDB:   ... DISTINCT v ... ANTI JOIN dict ... max_id + row_number()
  lookup       (starload only) load the dictionary and map every input row to
               its id, as the encoder does

Wall time and peak RSS come from /usr/bin/time -v around each process (the
DuckDB side runs in its own Python process; its query time is also measured
inside the process and the ratio uses that, which favours DuckDB). The new
value counts of both sides are checked to agree.

  scripts/bench_dict.py [--sf 5] [--work DIR] [--reps 3] [--synthetic 50000000]
                        [--only o_comment,l_comment,c_name,synthetic]

Needs: tpchgen-cli (cargo install tpchgen-cli), DuckDB and pyarrow (the test
venv, $HOME/.cache/starload/venv), and builds the runner in release mode.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/starload-target"))
RUNNER = TARGET / "release/examples/dict_build"

COLUMNS = {
    "o_comment": ("orders", "o_comment"),
    "l_comment": ("lineitem", "l_comment"),
    "c_name": ("customer", "c_name"),
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns (wall s, peak RSS KiB, stdout)."""
    t = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    wall = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}")
    rss = 0
    for line in p.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1])
    return wall, rss, p.stdout


def duckdb_py():
    venv = Path.home() / ".cache/starload/venv/bin/python"
    return str(venv) if venv.exists() else sys.executable


DUCK_SCRIPT = r"""
import duckdb, json, sys, time
q = sys.argv[1]
con = duckdb.connect()
con.execute("SET preserve_insertion_order = false")
t = time.monotonic()
con.execute(q)
print(json.dumps({"query_s": time.monotonic() - t}))
"""


def duck(query):
    wall, rss, out = timed([duckdb_py(), "-c", DUCK_SCRIPT, query])
    return {"wall_s": wall, "rss_kib": rss, **json.loads(out.strip().splitlines()[-1])}


def duck_quick(query):
    import duckdb  # noqa: PLC0415

    return duckdb.connect().execute(query).fetchall()


def starload(mode, store, inp, column):
    wall, rss, out = timed([str(RUNNER), mode, "--store", str(store), "--input", str(inp), "--column", column])
    r = json.loads(out.strip().splitlines()[-1])
    r.update(wall_s=wall, rss_kib=rss)
    return r


def gen_tpch(sf, out):
    done = out / ".done"
    if done.exists():
        return
    exe = shutil.which("tpchgen-cli") or str(Path.home() / ".cargo/bin/tpchgen-cli")
    if not Path(exe).exists():
        raise SystemExit("tpchgen-cli not found: cargo install tpchgen-cli")
    out.mkdir(parents=True, exist_ok=True)
    log(f"generating TPC-H SF{sf} (orders, lineitem, customer) into {out}")
    helptext = subprocess.run([exe, "--help"], capture_output=True, text=True).stdout
    if "parquet" in helptext and "Commands:" in helptext:  # tpchgen-cli >= 2: the format is a subcommand
        cmd = [exe, "parquet", "-s", str(sf), "--tables", "orders,lineitem,customer", "--output-dir", str(out)]
    else:
        cmd = [exe, "-s", str(sf), "--format", "parquet", "--tables", "orders,lineitem,customer", "--output-dir", str(out)]
    subprocess.run(cmd, check=True)
    done.touch()


def gen_synthetic(n, path):
    if path.exists():
        return
    log(f"generating {n} distinct strings into {path}")
    tmp = path.with_suffix(".tmp")
    # Random-looking prefixes of 4..23 hex digits and a unique suffix: ~24 bytes.
    duck_quick(
        f"""COPY (SELECT substr(md5(i::VARCHAR), 1, 4 + (i % 20)::INT) || '-' || i::VARCHAR AS v
                  FROM range({n}) t(i) ORDER BY hash(i))
            TO '{tmp}' (FORMAT parquet, ROW_GROUP_SIZE 1048576)"""
    )
    tmp.rename(path)


def input_of(data, name):
    if name == "synthetic":
        return data / "synthetic.parquet", "v"
    table, col = COLUMNS[name]
    p = data / "tpch" / f"{table}.parquet"
    if not p.exists():
        p = data / "tpch" / table
    return p, col


def base_input(data, name, inp, col):
    """The rows whose value is in the 80% 'already existing' part."""
    p = data / f"base-{name}.parquet"
    if not p.exists():
        src = f"'{inp}/**/*.parquet'" if inp.is_dir() else f"'{inp}'"
        duck_quick(
            f"COPY (SELECT {col} FROM read_parquet({src}) WHERE hash({col}) % 5 <> 0) TO '{p}' (FORMAT parquet)"
        )
    return p


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sf", type=int, default=5)
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache/starload/bench-dict")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--synthetic", type=int, default=50_000_000)
    ap.add_argument("--only", default="o_comment,l_comment,c_name,synthetic")
    ap.add_argument("--no-build", action="store_true", help="do not (re)build the release runner")
    a = ap.parse_args()

    if not a.no_build:
        log("building the release runner")
        subprocess.run(["cargo", "build", "--release", "--example", "dict_build"], cwd=ROOT, check=True)
    data = a.work / f"data-sf{a.sf}"
    data.mkdir(parents=True, exist_ok=True)
    names = [n for n in a.only.split(",") if n]
    if any(n in COLUMNS for n in names):
        gen_tpch(a.sf, data / "tpch")
    if "synthetic" in names:
        gen_synthetic(a.synthetic, data / "synthetic.parquet")
    scratch = a.work / "scratch"

    rows = []
    for name in names:
        inp, col = input_of(data, name)
        src = f"'{inp}/**/*.parquet'" if inp.is_dir() else f"'{inp}'"
        base = base_input(data, name, inp, col)
        # Dictionaries holding 80% of the values, built once per side (not timed).
        sl_base = scratch / f"{name}-sl-base"
        dk_base = scratch / f"{name}-dk-base.parquet"
        if not (sl_base / ".done").exists():
            shutil.rmtree(sl_base, ignore_errors=True)
            starload("build", sl_base, base, col)
            (sl_base / ".done").touch()
        if not dk_base.exists():
            duck_quick(
                f"""COPY (SELECT v AS value, row_number() OVER (ORDER BY v) AS id
                          FROM (SELECT DISTINCT {col} AS v FROM read_parquet('{base}') WHERE {col} IS NOT NULL))
                    TO '{dk_base}' (FORMAT parquet)"""
            )
        base_max = duck_quick(f"SELECT max(id) FROM read_parquet('{dk_base}')")[0][0]

        res = {k: [] for k in ["sl_full", "dk_full", "sl_inc", "dk_inc", "sl_lookup"]}
        for rep in range(a.reps):
            log(f"{name}: repetition {rep + 1}/{a.reps}")
            # A: starload full
            st = scratch / f"{name}-sl-full"
            shutil.rmtree(st, ignore_errors=True)
            res["sl_full"].append(starload("build", st, inp, col))
            # B: DuckDB full
            out = scratch / f"{name}-dk-full.parquet"
            out.unlink(missing_ok=True)
            res["dk_full"].append(
                duck(
                    f"""COPY (SELECT v AS value, row_number() OVER (ORDER BY v) AS id
                              FROM (SELECT DISTINCT {col} AS v FROM read_parquet({src}) WHERE {col} IS NOT NULL))
                        TO '{out}' (FORMAT parquet)"""
                )
            )
            if rep == 0:
                n = duck_quick(f"SELECT count(*) FROM read_parquet('{out}')")[0][0]
                assert n == res["sl_full"][0]["new"], (name, n, res["sl_full"][0])
            # A: starload incremental (80% exist)
            st = scratch / f"{name}-sl-inc"
            shutil.rmtree(st, ignore_errors=True)
            shutil.copytree(sl_base, st)
            res["sl_inc"].append(starload("build", st, inp, col))
            # B: DuckDB incremental
            out = scratch / f"{name}-dk-inc.parquet"
            out.unlink(missing_ok=True)
            res["dk_inc"].append(
                duck(
                    f"""COPY (SELECT n.v AS value, {base_max} + row_number() OVER (ORDER BY n.v) AS id
                              FROM (SELECT DISTINCT {col} AS v FROM read_parquet({src}) WHERE {col} IS NOT NULL) n
                              ANTI JOIN read_parquet('{dk_base}') d ON n.v = d.value)
                        TO '{out}' (FORMAT parquet)"""
                )
            )
            if rep == 0:
                n = duck_quick(f"SELECT count(*) FROM read_parquet('{out}')")[0][0]
                assert n == res["sl_inc"][0]["new"], (name, n, res["sl_inc"][0])
            # starload lookup/encode over the full dictionary
            res["sl_lookup"].append(starload("lookup", scratch / f"{name}-sl-full", inp, col))

        f = res["sl_full"][0]
        row = {
            "column": name,
            "rows": f["rows"],
            "distinct": f["distinct"],
            "new_inc": res["sl_inc"][0]["new"],
            "sl_full_s": median([r["wall_s"] for r in res["sl_full"]]),
            "dk_full_s": median([r["query_s"] for r in res["dk_full"]]),
            "dk_full_wall_s": median([r["wall_s"] for r in res["dk_full"]]),
            "sl_inc_s": median([r["wall_s"] for r in res["sl_inc"]]),
            "dk_inc_s": median([r["query_s"] for r in res["dk_inc"]]),
            "dk_inc_wall_s": median([r["wall_s"] for r in res["dk_inc"]]),
            "sl_full_rss_mib": max(r["rss_kib"] for r in res["sl_full"]) / 1024,
            "dk_full_rss_mib": max(r["rss_kib"] for r in res["dk_full"]) / 1024,
            "sl_inc_rss_mib": max(r["rss_kib"] for r in res["sl_inc"]) / 1024,
            "dk_inc_rss_mib": max(r["rss_kib"] for r in res["dk_inc"]) / 1024,
            "sl_map_rows_per_s": median([r["map_rows_per_s"] for r in res["sl_lookup"]]),
            "sl_lookup_load_s": median([r["load_s"] for r in res["sl_lookup"]]),
            "sl_lookup_rss_mib": max(r["rss_kib"] for r in res["sl_lookup"]) / 1024,
            "sl_full_phases": {k: median([r[k] for r in res["sl_full"]]) for k in ["read_dedupe_s", "sort_s", "write_s"]},
            "sl_inc_phases": {
                k: median([r[k] for r in res["sl_inc"]]) for k in ["read_dedupe_s", "existing_s", "sort_s", "write_s"]
            },
        }
        rows.append(row)
        log(json.dumps(row))

    print()
    hdr = (
        f"{'column':<10} {'rows':>11} {'distinct':>11} | {'full: starload':>14} {'duckdb':>7} {'ratio':>6} | "
        f"{'incr (80%): starload':>20} {'duckdb':>7} {'ratio':>6} | {'peak RSS MiB sl/dk (full)':>25} | "
        f"{'lookup Mrows/s':>14}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(
            f"{r['column']:<10} {r['rows']:>11,} {r['distinct']:>11,} | {r['sl_full_s']:>13.2f}s {r['dk_full_s']:>6.2f}s "
            f"{r['dk_full_s'] / r['sl_full_s']:>5.2f}x | {r['sl_inc_s']:>19.2f}s {r['dk_inc_s']:>6.2f}s "
            f"{r['dk_inc_s'] / r['sl_inc_s']:>5.2f}x | {r['sl_full_rss_mib']:>11.0f} / {r['dk_full_rss_mib']:>11.0f} | "
            f"{r['sl_map_rows_per_s'] / 1e6:>14.1f}"
        )
    print("\nratio = DuckDB query time / starload process wall time (median of", a.reps, "runs each, interleaved)")
    (a.work / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"details: {a.work / 'results.json'}")


if __name__ == "__main__":
    main()
