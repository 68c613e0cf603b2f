#!/usr/bin/env python3
"""Generate a deterministic Hive-partitioned Parquet test corpus plus oracles.

Usage:
    python3 scripts/gen_corpus.py --out DIR [--seed 42] [--rows 3000] [--row-group-size 64]
    python3 scripts/gen_corpus.py --verify DIR

Needs the pins in scripts/requirements-test.txt (pyarrow, duckdb, polars; no
numpy/pandas); the Spark datasets need pyspark and a JVM (scripts/bench/requirements.txt).

Datasets of the same logical table are written under DIR:

  DIR/pyarrow/        pyarrow.parquet.write_table with the writer defaults
                      (format version 2.6, snappy, dictionary on, ARROW:schema
                      stored), small row groups, 2-3 files per partition, plus
                      junk the loader must skip (_SUCCESS, _tmp/, a .hidden file,
                      a .crc file) and a zero-byte part-empty.parquet.
  DIR/pyarrow_int96/  the same rows and file layout, written with
                      use_deprecated_int96_timestamps=True and, by default,
                      store_schema=False, i.e. like Hive/Spark files: INT96
                      timestamps and no ARROW:schema type hints
                      (--int96-store-arrow-schema keeps the hints).
  DIR/pyarrow_encodings/  the same rows and file layout, written by pyarrow
                      with data page v2, no dictionaries, every codec (zstd,
                      gzip, brotli, lz4, snappy, none) and the non-PLAIN
                      encodings (DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY,
                      DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT, RLE booleans) spread
                      over the columns and nested leaves, 512-byte pages, a
                      page index, legacy list naming (list/item) and no
                      ARROW:schema.
  DIR/polars/          the same rows and file layout, written by polars' own
                      writer (zstd; its ARROW:schema says large_string,
                      large_binary, large_list, dictionary<uint32>); c_map
                      and c_dec256 are absent (polars has no such types).
  DIR/spark/, DIR/spark_legacy/  (only with --datasets) written by Spark
                      local mode, with its defaults and with writeLegacyFormat,
                      TIMESTAMP_MICROS and lz4; committed under testdata/spark.
  DIR/duckdb/         the same rows written by DuckDB
                      COPY ... (FORMAT PARQUET, PARTITION_BY (dt, region)), one
                      COPY per file slot so partitions get the same files as
                      above. c_dec256 is absent (DuckDB cannot ingest Arrow
                      decimal256).

Partition directories are dt=YYYY-MM-DD/region=<escaped>; "ap south" is
written as region=ap%20south. Partition columns are not stored in the files.

Each dataset gets _expected.jsonl (one canonical JSON object per row, sorted by
id, computed from the generator's Python values, never read back) and
_manifest.json (columns in file order with source Arrow type, Arrow type as
pyarrow reads the files, Parquet physical/logical types, StarRocks target type;
partition columns; row count; files; files to skip; writer quirks).

Canonical value forms in _expected.jsonl:
  null -> null; integers of every width -> "decimal string"; bool -> true/false;
  float32 -> {"f32": "8 lowercase hex digits of the IEEE bits"};
  float64 -> {"f64": "16 lowercase hex digits"};
  decimal -> {"dec": "unscaled integer", "scale": s}; date -> "YYYY-MM-DD";
  timestamp (any unit, any tz) -> {"ts_us": "microseconds since the epoch"}
  (tz-naive: the wall clock read as UTC); string -> JSON string;
  binary -> {"b64": "standard base64 with padding"}; list -> JSON array;
  map -> {"map": [[key, value], ...]} in stored order; struct -> JSON object.
  dt -> "YYYY-MM-DD", region -> decoded string.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import decimal
import hashlib
import json
import os
import random
import shutil
import struct
import sys
import time
import urllib.parse

import pyarrow as pa
import pyarrow.parquet as pq

DATASETS = ("pyarrow", "pyarrow_int96", "duckdb", "pyarrow_encodings", "polars")
# Written by Spark (pyspark from scripts/bench/requirements.txt, a JVM): not
# part of the generated corpus; committed under testdata/spark/ (small --rows)
# by scripts/gen_corpus.py --out testdata/spark --datasets spark,spark_legacy --rows 300.
SPARK_DATASETS = ("spark", "spark_legacy")
DATES = ("2024-02-28", "2024-02-29", "2024-03-01")
REGIONS = ("eu", "us", "ap south")
PARTITION_COLUMNS = [
    {"name": "dt", "starrocks_type": "DATE", "canonical": "YYYY-MM-DD string"},
    {"name": "region", "starrocks_type": "VARCHAR(32)", "canonical": "decoded string"},
]
# Relative row weights of the partitions (dt, region); one is large, one tiny.
PARTITION_WEIGHTS = {("2024-02-29", "us"): 2.0, ("2024-03-01", "ap south"): 0.04}
BOGUS_ID_BASE = 1_000_000_000  # ids of rows in junk files that must never load

EPOCH = _dt.datetime(1970, 1, 1)
EPOCH_DATE = _dt.date(1970, 1, 1)


def us_of(*args) -> int:
    """Microseconds since the epoch of a naive datetime (read as UTC)."""
    return (_dt.datetime(*args) - EPOCH) // _dt.timedelta(microseconds=1)


def days_of(y, m, d) -> int:
    return (_dt.date(y, m, d) - EPOCH_DATE).days


# ---------------------------------------------------------------- columns ---

INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
I32_MIN, I32_MAX = INT_RANGES["int32"]
I64_MIN, I64_MAX = INT_RANGES["int64"]

STRUCT_T = pa.struct([("a", pa.int32()), ("b", pa.string())])

# (name, arrow type, StarRocks type, kind, options)
COLUMNS = [
    ("id", pa.int64(), "BIGINT NOT NULL", "int", {"nullable": False}),
    ("c_bool", pa.bool_(), "BOOLEAN", "bool", {}),
    ("c_i8", pa.int8(), "TINYINT", "int", {}),
    ("c_i16", pa.int16(), "SMALLINT", "int", {}),
    ("c_i32", pa.int32(), "INT", "int", {}),
    ("c_i64", pa.int64(), "BIGINT", "int", {}),
    ("c_u8", pa.uint8(), "SMALLINT", "int", {"spark": False}),
    ("c_u16", pa.uint16(), "INT", "int", {"spark": False}),
    ("c_u32", pa.uint32(), "BIGINT", "int", {"spark": False}),
    ("c_u64", pa.uint64(), "LARGEINT", "int", {"spark": False}),
    ("c_f32", pa.float32(), "FLOAT", "f32", {}),
    ("c_f64", pa.float64(), "DOUBLE", "f64", {}),
    ("c_dec9", pa.decimal128(9, 2), "DECIMAL(9,2)", "dec", {}),
    ("c_dec18", pa.decimal128(18, 6), "DECIMAL(18,6)", "dec", {}),
    ("c_dec38", pa.decimal128(38, 10), "DECIMAL(38,10)", "dec", {}),
    ("c_dec256", pa.decimal256(38, 4), "DECIMAL(38,4)", "dec", {"duckdb": False, "spark": False, "polars": False}),
    ("c_date", pa.date32(), "DATE", "date", {}),
    ("c_ts_ms", pa.timestamp("ms"), "DATETIME", "ts", {}),
    ("c_ts_us", pa.timestamp("us"), "DATETIME", "ts", {}),
    ("c_ts_ns", pa.timestamp("ns"), "DATETIME", "ts", {"spark": False}),
    ("c_ts_tz", pa.timestamp("us", tz="UTC"), "DATETIME", "ts", {}),
    ("c_ts_sh", pa.timestamp("ms", tz="Asia/Shanghai"), "DATETIME", "ts", {}),
    ("c_str", pa.string(), "VARCHAR(255)", "str", {"max_bytes": 255}),
    ("c_lstr", pa.large_string(), "STRING", "str", {"max_bytes": 65533, "spark": False}),
    ("c_dict", pa.dictionary(pa.int32(), pa.string()), "VARCHAR(64)", "dict", {"max_bytes": 64, "spark": False}),
    ("c_bin", pa.binary(), "VARBINARY", "bin", {}),
    ("c_list_i32", pa.list_(pa.int32()), "ARRAY<INT>", "list_i32", {}),
    ("c_list_str", pa.list_(pa.string()), "ARRAY<VARCHAR(100)>", "list_str", {"max_bytes": 100}),
    ("c_list_list", pa.list_(pa.list_(pa.int64())), "ARRAY<ARRAY<BIGINT>>", "list_list", {}),
    ("c_map", pa.map_(pa.string(), pa.int32()), "MAP<VARCHAR(50),INT>", "map", {"max_bytes": 50, "polars": False}),
    ("c_struct", STRUCT_T, "JSON", "struct", {}),
]


COLUMN_NOTES = {
    "c_u64": "includes 2^63, 2^63+1 and 2^64-1: above BIGINT, needs LARGEINT",
    "c_f32": "NaN is 0x7fc00000; includes -0.0, +-inf, subnormal 0x00000001 (1.4e-45), max 0x7f7fffff, 0.1f, 1/3f",
    "c_f64": "NaN is 0x7ff8000000000000; includes -0.0, +-inf, 5e-324, max, 0.1, 1/3, 0.1+0.2",
    "c_date": "proleptic Gregorian; includes 0001-01-01, 1582-10-04/15 (Julian switch), 9999-12-31",
    "c_ts_ms": "includes 0001-01-01, 1582-10-04, 1900-01-01, -1 ms, 9999-12-31 23:59:59.999",
    "c_ts_us": "includes 0001-01-01 00:00:00.000001, -1 us, 9999-12-31 23:59:59.999999",
    "c_ts_ns": "whole microseconds only, within the int64-ns range: 1677-09-21 00:12:43.145225 .. "
               "2262-04-11 23:47:16.854775 (both present)",
    "c_ts_sh": "UTC instants chosen so the Asia/Shanghai wall clock stays inside 0001-01-01..9999-12-31 "
               "under any offset (LMT +08:05:43 before 1901, DST +09 in 1986-1991)",
    "c_str": "byte lengths <= 255, incl. exactly 255 ASCII bytes and 63 x 4-byte emoji (252 bytes)",
    "c_lstr": "up to ~3000 characters",
    "c_dict": "values <= 64 bytes, incl. exactly 64",
    "c_bin": "includes all 256 byte values, empty, invalid UTF-8",
    "c_list_str": "elements <= 100 bytes, incl. exactly 100",
    "c_map": "keys <= 50 bytes and unique within a map; some maps not in sorted key order",
}


def columns_for(dataset: str):
    if dataset == "duckdb":
        return [c for c in COLUMNS if c[4].get("duckdb", True)]
    if dataset.startswith("spark"):
        return [c for c in COLUMNS if c[4].get("spark", True)]
    if dataset == "polars":
        return [c for c in COLUMNS if c[4].get("polars", True)]
    return list(COLUMNS)


# ------------------------------------------------------------ edge values ---

F32_EDGE_BITS = [
    0x7FC00000,  # NaN
    0x7F800000,  # +inf
    0xFF800000,  # -inf
    0x80000000,  # -0.0
    0x00000000,  # 0.0
    0x00000001,  # 1.4e-45, smallest subnormal
    0x80000001,  # -1.4e-45
    0x7F7FFFFF,  # 3.4028235e38, max
    0xFF7FFFFF,  # -3.4028235e38
    0x00800000,  # 1.17549435e-38, smallest normal
    0x3DCCCCCD,  # 0.1f
    0x3EAAAAAB,  # 1/3f
    0x3E99999A,  # 0.3f
    0x4B800000,  # 16777216f
    0x33D6BF95,  # 1e-7f
    0x3F800000,  # 1.0
    0xBF800000,  # -1.0
]
F64_EDGES = [
    float("nan"), float("inf"), float("-inf"), -0.0, 0.0,
    5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308,
    2.2250738585072014e-308, 0.1, 1 / 3, 2 / 3, 0.1 + 0.2, 1e21, 1e-7,
    123456789.123456789, 9007199254740992.0, 100.0, -1.0, 1.5,
]


def f64_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def f32_bits_of(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


STR_EDGES = [
    "", "\x01", "\x02", "\t", "\n", "\r\n", '"', "'", "\\", "\\N", "N", "null", "NULL",
    ",", "a,b", "{", "[1,2]", '{"k":1}', "😀𝄞 4-byte UTF-8", "日本語",
    "x" * 200,                       # long ASCII
    "😀" * 63,                       # 252 bytes of 4-byte UTF-8
    ("0123456789" * 26)[:255],       # exactly 255 bytes
    "trailing spaces   ", " leading space", " ", "   ", "tab\tinside", "line1\nline2",
    "\u2028sep", "\ufeffBOM", "e\u0301", "\x7f", "C:\\dir\\file", "100%", "%20",
    "it's \"quoted\"", "\\t not a tab", "a\\,b",
]
DICT_VALUES = [
    "", "alpha", "beta", "gamma", "with space ", 'quote"', "comma,sep", "\\N", "null",
    "NULL", "日本語", "😀", "tab\there", "y" * 64,
]
LIST_STR_EDGES = [
    [], [None], [""], ["null"], ['"', ",", "[", "]", "\\", "", "null", None],
    ["a,b", "[1,2]", '{"k":1}', "{", "}"], ["😀", "日本語", "𝄞"], ["\\N", "NULL", "N"],
    ["z" * 100], ["line\nbreak", "tab\t", "\r\n"], ["trailing ", " "], [None, None],
    ["'single'", "\\\\", "]["],
]
LIST_I32_EDGES = [
    [], [None], [1, None, 3], [I32_MIN, I32_MAX], [None, None], [0], list(range(-25, 25)),
]
LIST_LIST_EDGES = [
    [], [[]], [[], []], [None], [[None]], [[1, 2], [3]], [[I64_MIN, I64_MAX]],
    [None, [], [None, 0]], [[0] * 10, [], None],
]
MAP_EDGES = [
    [], [("k", None)], [("", 0)],
    [("a,b", 1), ('"q"', 2), ("{", 3), ("}", 4), (":", 5), ("=", 6), ("[", 7), ("]", 8)],
    [("😀", I32_MAX), ("日本語", I32_MIN)], [("null", None), ("NULL", 1), ("\\N", 2)],
    [("k" * 50, 1)], [("sp ace ", 1), (" ", 2)], [("\n", 1), ("\t", 2), ("\\", 3)],
    [("z", 1), ("a", 2), ("m", 3)],  # stored order is not sorted order
]
STRUCT_EDGES = [
    {"a": None, "b": None}, {"a": 0, "b": ""}, {"a": I32_MIN, "b": 'quote" comma, brace{}[]'},
    {"a": I32_MAX, "b": "😀\n\\N"}, {"a": 1, "b": None}, {"a": None, "b": "null"},
    {"a": -1, "b": '{"k":1}'}, {"a": 2, "b": "\\"}, {"a": 3, "b": "NULL"},
]
BIN_EDGES = [
    bytes(range(256)), b"", b"\x00", b"\xff\xfe", b"\\N", b"\xc3\x28", b"null", bytes(range(255, -1, -1)),
]
DATE_EDGES = [
    days_of(1, 1, 1), days_of(1969, 12, 31), days_of(1970, 1, 1), days_of(2024, 2, 29),
    days_of(9999, 12, 31), days_of(1582, 10, 4), days_of(1582, 10, 15), days_of(1900, 1, 1),
    days_of(1899, 12, 31), days_of(2000, 2, 29),
]
NS_MAX_US = I64_MAX // 1000                # 2262-04-11 23:47:16.854775
NS_MIN_US = -(-I64_MIN // 1000)            # 1677-09-21 00:12:43.145225
TS_US_EDGES = [
    -1, 0, us_of(1900, 1, 1), us_of(1, 1, 1), us_of(9999, 12, 31, 23, 59, 59, 999999),
    us_of(2024, 2, 29, 12, 34, 56, 789012), us_of(1582, 10, 4, 23, 59, 59),
    us_of(1969, 12, 31, 23, 59, 59, 500000), us_of(2038, 1, 19, 3, 14, 8), us_of(1, 1, 1, 0, 0, 0, 1),
]
TS_MS_EDGES = [
    -1, 0, us_of(1900, 1, 1) // 1000, us_of(1, 1, 1) // 1000,
    us_of(9999, 12, 31, 23, 59, 59, 999000) // 1000, us_of(2024, 2, 29, 12, 34, 56, 789000) // 1000,
    us_of(1582, 10, 4, 23, 59, 59) // 1000, us_of(1969, 12, 31, 23, 59, 59, 1000) // 1000,
    us_of(2038, 1, 19, 3, 14, 8) // 1000,
]
TS_NS_EDGES_US = [
    -1, 0, us_of(1900, 1, 1), NS_MAX_US, NS_MIN_US, us_of(2024, 2, 29, 12, 34, 56, 789012),
    us_of(1969, 12, 31, 23, 59, 59, 999999), us_of(2262, 4, 11), us_of(1677, 9, 22),
]
# Asia/Shanghai column: keep the local wall clock inside 0001-01-01..9999-12-31
# whatever offset a reader applies (LMT is +08:05:43 before 1901).
TS_SH_EDGES_MS = [
    -1, 0, us_of(1900, 1, 1) // 1000, us_of(1, 1, 2) // 1000,
    us_of(9999, 12, 31, 15, 59, 59, 999000) // 1000,
    us_of(1988, 7, 1, 4) // 1000,            # inside China's 1986-1991 DST
    us_of(1901, 1, 1) // 1000, us_of(2024, 2, 29, 15, 59, 59, 999000) // 1000,
]


def dec_edges(p: int, s: int):
    mx = 10**p - 1
    return [mx, -mx, 0, 1, -1, 10**s, -(10**s), 10 ** (p - 1), 5 * 10 ** (s - 1) if s else 5]


# ------------------------------------------------------------ generation ---

class Layout:
    """Which partition and file each id goes to."""

    def __init__(self, n: int, rng: random.Random):
        self.parts = [(d, r) for d in DATES for r in REGIONS]
        weights = [PARTITION_WEIGHTS.get(p, 1.0) for p in self.parts]
        pidx = rng.choices(range(len(self.parts)), weights=weights, k=n)
        members = [[] for _ in self.parts]
        for i, p in enumerate(pidx):
            members[p].append(i)
        # every partition needs at least 3 rows (2-3 files, adjacency pairs)
        for p in range(len(self.parts)):
            while len(members[p]) < 3:
                big = max(range(len(self.parts)), key=lambda q: len(members[q]))
                moved = members[big].pop(rng.randrange(len(members[big])))
                members[p].append(moved)
                members[p].sort()
        self.partition_of = [None] * n
        self.files = []  # list of dict(part=(dt, region), slot=k, ids=[...])
        for p, ids in enumerate(members):
            for i in ids:
                self.partition_of[i] = self.parts[p]
            nfiles = min(rng.choice([2, 3]), len(ids))
            cuts = sorted(rng.sample(range(1, len(ids)), nfiles - 1))
            bounds = [0] + cuts + [len(ids)]
            for k in range(nfiles):
                self.files.append({"part": self.parts[p], "slot": k, "ids": ids[bounds[k]:bounds[k + 1]]})
        self.slot_of = [None] * n
        for f in self.files:
            for i in f["ids"]:
                self.slot_of[i] = f["slot"]


def rand_str(rng: random.Random, max_bytes: int, max_chars: int = 40) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,;:!?'\"\\/"
    extra = ["é", "ß", "ж", "中", "文", "😀", "𝄞", "\t", "\n"]
    n = rng.randint(0, max_chars)
    out = []
    size = 0
    for _ in range(n):
        ch = rng.choice(extra) if rng.random() < 0.08 else rng.choice(alphabet)
        b = len(ch.encode())
        if size + b > max_bytes:
            break
        out.append(ch)
        size += b
    return "".join(out)


def rand_f64_bits(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.4:
        return f64_bits(round(rng.uniform(-1e4, 1e4), rng.randint(0, 6)))
    if r < 0.6:
        return f64_bits(rng.gauss(0.0, 10.0 ** rng.randint(-12, 12)))
    while True:  # any finite bit pattern: subnormals, huge, tiny
        b = rng.getrandbits(64)
        if (b >> 52) & 0x7FF != 0x7FF:
            return b


def rand_f32_bits(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.4:
        return f32_bits_of(round(rng.uniform(-1e4, 1e4), rng.randint(0, 4)))
    if r < 0.6:
        return f32_bits_of(rng.gauss(0.0, 10.0 ** rng.randint(-6, 6)))
    while True:
        b = rng.getrandbits(32)
        if (b >> 23) & 0xFF != 0xFF:
            return b


def rand_ts_us(rng: random.Random, lo: int, hi: int) -> int:
    if rng.random() < 0.5:  # recent era, the common case
        lo2, hi2 = max(lo, us_of(1990, 1, 1)), min(hi, us_of(2035, 1, 1))
        return rng.randint(lo2, hi2)
    return rng.randint(lo, hi)


def gen_random(kind: str, atype, opts, rng: random.Random):
    """One random non-null value in the Python-side representation."""
    if kind == "int":
        lo, hi = INT_RANGES[str(atype)]
        r = rng.random()
        if r < 0.3:
            return max(lo, min(hi, rng.randint(-100, 100)))
        return rng.randint(lo, hi)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "f32":
        return rand_f32_bits(rng)
    if kind == "f64":
        return rand_f64_bits(rng)
    if kind == "dec":
        digits = rng.randint(1, atype.precision)
        v = rng.randint(0, 10**digits - 1)
        return -v if rng.random() < 0.5 else v
    if kind == "date":
        if rng.random() < 0.5:
            return rng.randint(days_of(1990, 1, 1), days_of(2035, 1, 1))
        return rng.randint(days_of(1, 1, 1), days_of(9999, 12, 31))
    if kind == "ts":
        unit, tz = atype.unit, atype.tz
        if unit == "ns":
            return rand_ts_us(rng, NS_MIN_US, NS_MAX_US) * 1000
        if tz == "Asia/Shanghai":
            return rand_ts_us(rng, us_of(1, 1, 2), us_of(9999, 12, 31, 15, 59, 59, 999000)) // 1000
        v = rand_ts_us(rng, us_of(1, 1, 1), us_of(9999, 12, 31, 23, 59, 59, 999999))
        return v // 1000 if unit == "ms" else v
    if kind == "str":
        if opts["max_bytes"] > 255 and rng.random() < 0.05:
            return rand_str(rng, opts["max_bytes"], 3000)
        return rand_str(rng, opts["max_bytes"])
    if kind == "dict":
        return rng.choice(DICT_VALUES)
    if kind == "bin":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 32)))
    if kind == "list_i32":
        return [None if rng.random() < 0.1 else rng.randint(I32_MIN, I32_MAX) for _ in range(rng.randint(0, 5))]
    if kind == "list_str":
        return [None if rng.random() < 0.1 else rand_str(rng, 100, 12) for _ in range(rng.randint(0, 5))]
    if kind == "list_list":
        out = []
        for _ in range(rng.randint(0, 4)):
            if rng.random() < 0.1:
                out.append(None)
            else:
                out.append([None if rng.random() < 0.1 else rng.randint(-(10**12), 10**12)
                            for _ in range(rng.randint(0, 3))])
        return out
    if kind == "map":
        keys = []
        for _ in range(rng.randint(0, 4)):
            k = rand_str(rng, 50, 10)
            if k not in keys:
                keys.append(k)
        return [(k, None if rng.random() < 0.15 else rng.randint(I32_MIN, I32_MAX)) for k in keys]
    if kind == "struct":
        return {"a": None if rng.random() < 0.1 else rng.randint(I32_MIN, I32_MAX),
                "b": None if rng.random() < 0.1 else rand_str(rng, 255, 20)}
    raise ValueError(kind)


def edges_for(kind: str, atype):
    """(single edge values, adjacent groups) for a column."""
    if kind == "int":
        lo, hi = INT_RANGES[str(atype)]
        vals = [lo, hi, 0, 1, lo + 1, hi - 1]
        if lo < 0:
            vals.append(-1)
        if str(atype) == "uint64":
            vals += [2**63, 2**63 + 1, 2**63 - 1, 2**64 - 2, 12345678901234567890]
        return vals + [None], []
    if kind == "bool":
        return [True, False, None], []
    if kind == "f32":
        return F32_EDGE_BITS + [None], []
    if kind == "f64":
        return [f64_bits(x) for x in F64_EDGES] + [None], []
    if kind == "dec":
        return dec_edges(atype.precision, atype.scale) + [None], []
    if kind == "date":
        return DATE_EDGES + [None], []
    if kind == "ts":
        if atype.unit == "ns":
            return [v * 1000 for v in TS_NS_EDGES_US] + [None], []
        if atype.tz == "Asia/Shanghai":
            return TS_SH_EDGES_MS + [None], []
        if atype.unit == "ms":
            return TS_MS_EDGES + [None], []
        return TS_US_EDGES + [None], []
    if kind == "str":
        return STR_EDGES + [None], [("", None), (None, "")]
    if kind == "dict":
        return DICT_VALUES + [None], [("", None)]
    if kind == "bin":
        return BIN_EDGES + [None], [(b"", None), (None, b"")]
    if kind == "list_i32":
        return LIST_I32_EDGES + [None], [([], None), (None, [])]
    if kind == "list_str":
        return LIST_STR_EDGES + [None], [([], None), ([None], None)]
    if kind == "list_list":
        return LIST_LIST_EDGES + [None], [([], None), ([[]], None)]
    if kind == "map":
        return MAP_EDGES + [None], [([], None), (None, [])]
    if kind == "struct":
        return STRUCT_EDGES + [None], [({"a": None, "b": None}, None)]
    raise ValueError(kind)


def check_limits(name, kind, opts, v):
    if v is None:
        return
    mb = opts.get("max_bytes")
    if kind in ("str", "dict"):
        assert len(v.encode()) <= mb, (name, v)
    elif kind == "list_str":
        assert all(e is None or len(e.encode()) <= mb for e in v), (name, v)
    elif kind == "map":
        assert all(len(k.encode()) <= mb for k, _ in v), (name, v)
        assert len({k for k, _ in v}) == len(v), (name, "duplicate map key", v)


def generate(n: int, seed: int):
    rng = random.Random(seed)
    layout = Layout(n, rng)
    all_null_row = rng.randrange(n)
    values = {}
    for name, atype, _sr, kind, opts in COLUMNS:
        if name == "id":
            values[name] = list(range(n))
            continue
        crng = random.Random(f"{seed}:{name}")  # per column: adding a column keeps the others stable
        col = [None if crng.random() < 0.05 else gen_random(kind, atype, opts, crng) for _ in range(n)]
        singles, groups = edges_for(kind, atype)
        used = {all_null_row}
        for group in groups:
            for _attempt in range(1000):
                f = crng.choice(layout.files)
                if len(f["ids"]) < len(group):
                    continue
                j = crng.randrange(len(f["ids"]) - len(group) + 1)
                ids = f["ids"][j:j + len(group)]
                if not used.intersection(ids):
                    break
            else:
                raise SystemExit("could not place adjacent edge values; use more --rows")
            for i, v in zip(ids, group):
                col[i] = v
                used.add(i)
        # Spread the single edge values round-robin over the files (so over partitions), from a
        # per-column random start, at a random free row of the file (so over row groups).
        nfiles = len(layout.files)
        start = crng.randrange(nfiles)
        for k, v in enumerate(singles):
            for step in range(nfiles):
                f = layout.files[(start + k + step) % nfiles]
                free = [i for i in f["ids"] if i not in used]
                if free:
                    break
            else:
                raise SystemExit("too few rows for the edge values; use more --rows")
            i = crng.choice(free)
            col[i] = v
            used.add(i)
        col[all_null_row] = None
        for v in col:
            check_limits(name, kind, opts, v)
        values[name] = col
    return layout, values, all_null_row


# ------------------------------------------------------ Arrow construction ---

def py_decimal(unscaled: int, scale: int) -> decimal.Decimal:
    return decimal.Decimal(f"{unscaled}E-{scale}")  # exact: string construction never rounds


def build_array(kind: str, atype, vals):
    if kind in ("int", "bool", "str", "bin", "list_i32", "list_str", "list_list", "map", "struct", "ts", "date"):
        return pa.array(vals, type=atype)
    if kind == "f32":
        return pa.array(vals, type=pa.uint32()).view(pa.float32())
    if kind == "f64":
        return pa.array(vals, type=pa.uint64()).view(pa.float64())
    if kind == "dec":
        return pa.array([None if v is None else py_decimal(v, atype.scale) for v in vals], type=atype)
    if kind == "dict":
        idx = pa.array([None if v is None else DICT_VALUES.index(v) for v in vals], type=pa.int32())
        return pa.DictionaryArray.from_arrays(idx, pa.array(DICT_VALUES, type=pa.string()))
    raise ValueError(kind)


def build_table(values, columns):
    arrays, fields = [], []
    for name, atype, _sr, kind, opts in columns:
        arr = build_array(kind, atype, values[name])
        assert arr.type == atype, (name, arr.type, atype)
        arrays.append(arr)
        fields.append(pa.field(name, atype, nullable=opts.get("nullable", True)))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# -------------------------------------------------------- canonical forms ---

def canon_int(v):
    return None if v is None else str(v)


def canon_gen(kind: str, atype, v):
    """Canonical JSON value from the generator's Python-side representation."""
    if v is None:
        return None
    if kind == "int":
        return str(v)
    if kind == "bool":
        return bool(v)
    if kind == "f32":
        return {"f32": f"{v:08x}"}
    if kind == "f64":
        return {"f64": f"{v:016x}"}
    if kind == "dec":
        return {"dec": str(v), "scale": atype.scale}
    if kind == "date":
        return (EPOCH_DATE + _dt.timedelta(days=v)).isoformat()
    if kind == "ts":
        mult = {"s": 1_000_000, "ms": 1000, "us": 1}.get(atype.unit)
        if mult is None:
            assert v % 1000 == 0
            return {"ts_us": str(v // 1000)}
        return {"ts_us": str(v * mult)}
    if kind in ("str", "dict"):
        return v
    if kind == "bin":
        return {"b64": base64.b64encode(v).decode()}
    if kind in ("list_i32", "list_list"):
        return [canon_gen(kind, None, e) if isinstance(e, list) else canon_int(e) for e in v]
    if kind == "list_str":
        return list(v)
    if kind == "map":
        return {"map": [[k, canon_int(x)] for k, x in v]}
    if kind == "struct":
        return {"a": canon_int(v["a"]), "b": v["b"]}
    raise ValueError(kind)


def canon_py(v, t):
    """Canonical JSON value of a to_pylist() value of Arrow type t (verify path)."""
    if v is None:
        return None
    if pa.types.is_integer(t):
        return str(v)
    if pa.types.is_boolean(t):
        return bool(v)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return v
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return {"b64": base64.b64encode(v).decode()}
    if pa.types.is_map(t):
        return {"map": [[canon_py(k, t.key_type), canon_py(x, t.item_type)] for k, x in v]}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return [canon_py(e, t.value_type) for e in v]
    if pa.types.is_struct(t):
        return {t.field(i).name: canon_py(v[t.field(i).name], t.field(i).type) for i in range(t.num_fields)}
    if pa.types.is_decimal(t):
        sign, digits, exp = v.as_tuple()
        unscaled = int("".join(map(str, digits)))
        shift = exp + t.scale
        if shift < 0:
            return {"dec": f"{v}", "scale": t.scale, "error": "more digits than the scale"}
        unscaled *= 10**shift
        return {"dec": str(-unscaled if sign else unscaled), "scale": t.scale}
    raise TypeError(f"canon_py: unsupported nested type {t}")


def canon_arrow(arr: pa.Array):
    """Canonical values of one Arrow array, column-wise (verify path)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        return canon_arrow(arr.dictionary_decode())
    nulls = arr.is_null().to_pylist()
    if pa.types.is_float32(t):
        bits = arr.view(pa.uint32()).to_pylist()
        return [None if z else {"f32": f"{b:08x}"} for z, b in zip(nulls, bits)]
    if pa.types.is_float64(t):
        bits = arr.view(pa.uint64()).to_pylist()
        return [None if z else {"f64": f"{b:016x}"} for z, b in zip(nulls, bits)]
    if pa.types.is_date32(t):
        days = arr.view(pa.int32()).to_pylist()
        return [None if z else (EPOCH_DATE + _dt.timedelta(days=d)).isoformat() for z, d in zip(nulls, days)]
    if pa.types.is_timestamp(t):
        raw = arr.view(pa.int64()).to_pylist()
        out = []
        for z, x in zip(nulls, raw):
            if z:
                out.append(None)
            elif t.unit == "ns":
                out.append({"ts_us": str(x // 1000)} if x % 1000 == 0 else {"ts_us": f"{x / 1000}", "ns": str(x)})
            else:
                out.append({"ts_us": str(x * {"s": 1_000_000, "ms": 1000, "us": 1}[t.unit])})
        return out
    return [canon_py(v, t) for v in arr.to_pylist()]


# -------------------------------------------------------------- file layout ---

HIVE_ESCAPE = set(chr(c) for c in range(0x20)) | set('"#%\'*/:=?\\\x7f{[]^ ')


def hive_escape(s: str) -> str:
    """Hive's FileUtils.escapePathName, plus the space (as the brief and DuckDB do)."""
    return "".join(f"%{ord(c):02X}" if c in HIVE_ESCAPE else c for c in s)


def part_dir(part) -> str:
    dt, region = part
    return f"dt={hive_escape(dt)}/region={hive_escape(region)}"


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_skipped_name(name: str) -> bool:
    return name.startswith("_") or name.startswith(".")


def walk_data_files(root: str):
    """Data files as a loader should find them: no _/. names at any level, no zero-byte files."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_skipped_name(d))
        for f in sorted(filenames):
            p = os.path.join(dirpath, f)
            if is_skipped_name(f) or os.path.getsize(p) == 0:
                continue
            found.append(os.path.relpath(p, root).replace(os.sep, "/"))
    return sorted(found)


def partition_of_path(rel: str):
    vals = {}
    for comp in rel.split("/")[:-1]:
        k, _, v = comp.partition("=")
        vals[urllib.parse.unquote(k)] = urllib.parse.unquote(v)
    return vals


# ---------------------------------------------------------------- writers ---

def write_pyarrow(ds_dir, table, layout, rg, int96: bool, store_schema: bool, encodings: bool = False):
    kwargs = encodings_kwargs(rg) if encodings else {"row_group_size": rg}
    if int96:
        kwargs["use_deprecated_int96_timestamps"] = True
        kwargs["store_schema"] = store_schema
    for part, path in slot_files(ds_dir, table, layout):
        pq.write_table(part, path, **kwargs)
    return kwargs


def slot_files(ds_dir, table, layout):
    """Each file of the layout: its rows of `table` and its path (directory made)."""
    for f in layout.files:
        d = os.path.join(ds_dir, part_dir(f["part"]))
        os.makedirs(d, exist_ok=True)
        yield table.take(f["ids"]), os.path.join(d, f"part-{f['slot']:05d}.parquet")


def with_layout_columns(values, cols, layout):
    """The rows as a table with the layout's dt, region and file_slot columns."""
    table = build_table(values, cols)
    n = table.num_rows
    table = table.append_column("dt", pa.array([_dt.date.fromisoformat(layout.partition_of[i][0]) for i in range(n)], pa.date32()))
    table = table.append_column("region", pa.array([layout.partition_of[i][1] for i in range(n)], pa.string()))
    return table.append_column("file_slot", pa.array(layout.slot_of, pa.int32()))


CODECS = ("zstd", "gzip", "brotli", "lz4", "none", "snappy")
# Nested leaves by their Parquet paths (legacy naming: list/item, key_value).
LEAF_ENCODINGS = {
    "c_list_i32.list.item": "DELTA_BINARY_PACKED",
    "c_list_str.list.item": "DELTA_BYTE_ARRAY",
    "c_list_list.list.item.list.item": "DELTA_BINARY_PACKED",
    "c_map.key_value.key": "DELTA_LENGTH_BYTE_ARRAY",
    "c_map.key_value.value": "BYTE_STREAM_SPLIT",
    "c_struct.a": "DELTA_BINARY_PACKED",
    "c_struct.b": "DELTA_BYTE_ARRAY",
}


def encodings_kwargs(rg):
    """pyarrow options that exercise every codec and non-PLAIN encoding a
    reader meets in files from parquet-mr, Impala and arrow writers."""
    comp, enc = {}, {}
    for i, (name, _atype, _sr, kind, _opts) in enumerate(COLUMNS):
        comp[name] = CODECS[i % len(CODECS)]
        if kind in ("int", "date", "ts"):
            enc[name] = "DELTA_BINARY_PACKED" if i % 2 else "BYTE_STREAM_SPLIT"
        elif kind in ("f32", "f64", "dec"):
            enc[name] = "BYTE_STREAM_SPLIT"
        elif kind in ("str", "bin", "dict"):
            enc[name] = "DELTA_BYTE_ARRAY" if i % 2 else "DELTA_LENGTH_BYTE_ARRAY"
        elif kind == "bool":
            enc[name] = "RLE"
    for i, (path, e) in enumerate(LEAF_ENCODINGS.items()):
        enc[path] = e
        comp[path] = CODECS[i % len(CODECS)]
    return {"row_group_size": rg, "data_page_version": "2.0", "use_dictionary": False,
            "compression": comp, "column_encoding": enc, "data_page_size": 512,
            "write_page_index": True, "store_schema": False, "use_compliant_nested_type": False}


def write_polars(ds_dir, table, layout, rg):
    """polars' own Parquet writer (not pyarrow's), zstd, one file per slot."""
    import polars as pl

    cols = [c[0] for c in columns_for("polars")]
    table = table.select(cols)
    for part, path in slot_files(ds_dir, table, layout):
        pl.from_arrow(part).write_parquet(path, compression="zstd", row_group_size=rg)
    return {"library": "polars", "version": pl.__version__,
            "call": "polars.from_arrow(t).write_parquet(path, compression='zstd', row_group_size=rg)"}


def write_spark(ds_dir, values, layout, legacy: bool):
    """Spark local mode writes the rows, one write per file slot (renamed
    part-<slot>-<uuid>...), partitioned by dt and region like a Hive table.
    spark: Spark's defaults (snappy, INT96 timestamps, decimals as INT32 /
    INT64 / FLBA by precision, 3-level lists). spark_legacy:
    writeLegacyFormat (decimals as FLBA, lists as bag/array), TIMESTAMP_MICROS,
    Hadoop-framed LZ4."""
    import pyspark
    from pyspark.sql import SparkSession, functions as F

    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "1",
        "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    }
    if legacy:
        conf.update({
            "spark.sql.parquet.writeLegacyFormat": "true",
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.sql.parquet.compression.codec": "lz4",
        })
    b = SparkSession.builder.master("local[1]").appName("gen_corpus")
    for k, v in conf.items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    table = with_layout_columns(values, columns_for("spark"), layout)
    # Arrow's naive timestamps arrive as TimestampType (session time zone UTC,
    # so the same instants); c_ts_us becomes Spark's TIMESTAMP_NTZ.
    df = spark.createDataFrame(table).withColumn("c_ts_us", F.col("c_ts_us").cast("timestamp_ntz"))
    seen = set()
    for slot in sorted(set(layout.slot_of)):
        (df.where(F.col("file_slot") == slot).drop("file_slot").coalesce(1)
           .sortWithinPartitions("dt", "region", "id")
           .write.mode("append").partitionBy("dt", "region").parquet(ds_dir))
        for dirpath, _dirs, files in os.walk(ds_dir):
            for f in files:
                p = os.path.join(dirpath, f)
                if p in seen:
                    continue
                if f.startswith("part-00000-") or f.startswith(".part-00000-"):
                    q = os.path.join(dirpath, f.replace("part-00000-", f"part-{slot:05d}-", 1))
                    os.rename(p, q)
                    p = q
                seen.add(p)
    spark.stop()
    return {"library": "pyspark", "version": pyspark.__version__, "conf": conf,
            "write": "df.coalesce(1).sortWithinPartitions(dt, region, id).write.mode('append')"
                     ".partitionBy('dt', 'region').parquet(dir), once per file slot"}


def spark_side_files(ds_dir):
    """Spark's _SUCCESS marker and .crc checksums, as manifest skip entries."""
    skip = []
    for dirpath, _dirs, files in os.walk(ds_dir):
        for f in sorted(files):
            if is_skipped_name(f):
                rel = os.path.relpath(os.path.join(dirpath, f), ds_dir).replace(os.sep, "/")
                kind = "marker" if f == "_SUCCESS" else "junk"
                skip.append({"path": rel, "kind": kind, "bytes": os.path.getsize(os.path.join(dirpath, f)),
                             "reason": "Spark's job marker" if kind == "marker" else "Hadoop checksum file"})
    return sorted(skip, key=lambda e: e["path"])


def write_junk(ds_dir, table, layout, rg):
    """Files the loader must skip; returns manifest entries."""
    bogus = table.take([0, 1, 2])
    bogus = bogus.set_column(0, bogus.schema.field(0),
                             pa.array([BOGUS_ID_BASE + i for i in range(3)], pa.int64()))
    skip = []

    def add(rel, data, kind, reason):
        p = os.path.join(ds_dir, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(data, pa.Table):
            pq.write_table(data, p, row_group_size=rg)
        else:
            with open(p, "wb") as fh:
                fh.write(data)
        skip.append({"path": rel, "kind": kind, "bytes": os.path.getsize(p), "reason": reason})

    p0 = part_dir(layout.files[0]["part"])
    p1 = part_dir(layout.files[-1]["part"])
    add("_SUCCESS", b"", "marker", "name starts with '_' (Hadoop job marker, empty)")
    add("_tmp/" + p0 + "/part-00000.parquet", bogus, "valid_parquet_bogus_rows",
        f"under a '_' directory; valid Parquet with ids >= {BOGUS_ID_BASE} that must never be loaded")
    add("_tmp/garbage.bin", b"not parquet\x00\xff" * 8, "junk", "under a '_' directory")
    add(p1 + "/.hidden", _parquet_bytes(bogus, rg), "valid_parquet_bogus_rows",
        f"name starts with '.'; valid Parquet with ids >= {BOGUS_ID_BASE}")
    add(p0 + "/.part-00000.parquet.crc", b"crc\x00\x00\x00\x02\x00" + bytes(range(16)), "junk",
        "name starts with '.' (Hadoop checksum file)")
    add(p0 + "/part-empty.parquet", b"", "zero_byte_parquet",
        "zero-byte file with a .parquet name: not valid Parquet; must be skipped (0 rows), not fail the load")
    return skip


def _parquet_bytes(table, rg) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=rg)
    return sink.getvalue().to_pybytes()


def write_duckdb(ds_dir, values, layout, rg):
    import duckdb

    cols = columns_for("duckdb")
    table = with_layout_columns(values, cols, layout)
    con = duckdb.connect()
    con.execute("SET threads = 1")          # deterministic files and row order
    con.execute("SET preserve_insertion_order = true")
    con.register("src", table)
    col_list = ", ".join(f'"{c[0]}"' for c in cols)
    target = ds_dir.replace("'", "''")
    statements = []
    for slot in sorted(set(layout.slot_of)):
        sql = (f"COPY (SELECT {col_list}, dt, region FROM src WHERE file_slot = {slot} ORDER BY id) "
               f"TO '{target}' (FORMAT PARQUET, PARTITION_BY (dt, region), ROW_GROUP_SIZE {rg}, "
               f"FILENAME_PATTERN 'part-{slot:05d}-c{{i}}', OVERWRITE_OR_IGNORE true)")
        con.execute(sql)
        statements.append(sql.replace(target, "<dataset dir>"))
    con.close()
    return {"duckdb_version": duckdb.__version__, "settings": {"threads": 1, "preserve_insertion_order": True},
            "statements": statements}


# --------------------------------------------------------------- manifest ---

def parquet_leaves(pf: pq.ParquetFile):
    out = {}
    sch = pf.schema
    for i in range(len(sch)):
        c = sch.column(i)
        top = c.path.split(".")[0]
        logical = str(c.logical_type)
        out.setdefault(top, []).append({
            "path": c.path,
            "physical": c.physical_type + (f"({c.length})" if c.physical_type == "FIXED_LEN_BYTE_ARRAY" else ""),
            "logical": None if logical == "None" else logical,
            "converted": None if c.converted_type == "NONE" else c.converted_type,
            "max_def": c.max_definition_level,
            "max_rep": c.max_repetition_level,
        })
    return out


def describe_columns(dataset, sample_path):
    pf = pq.ParquetFile(sample_path)
    read_schema = pf.schema_arrow
    leaves = parquet_leaves(pf)
    src = {c[0]: c for c in COLUMNS}
    cols = []
    for field in read_schema:
        name, atype, sr, kind, opts = src[field.name]
        entry = {
            "name": field.name,
            "source_arrow_type": str(atype),
            "source_nullable": opts.get("nullable", True),
            "arrow_type": str(field.type),
            "nullable": field.nullable,
            "parquet": leaves.get(field.name, []),
            "starrocks_type": sr,
        }
        if field.name in COLUMN_NOTES:
            entry["values_note"] = COLUMN_NOTES[field.name]
        if dataset == "pyarrow_int96" and pa.types.is_timestamp(atype):
            entry["arrow_type_coerce_int96_us"] = "timestamp[us]"
        changes = []
        if not field.type.equals(atype):
            changes.append(f"type {atype} -> {field.type}")
        elif str(field.type) != str(atype):
            entry["print_differs"] = ("same Arrow type; only child field names differ "
                                      "(Parquet LIST 'element' / MAP entries naming)")
        if field.nullable != opts.get("nullable", True):
            changes.append(f"nullable {opts.get('nullable', True)} -> {field.nullable}")
        if changes:
            entry["writer_changed"] = "; ".join(changes)
        cols.append(entry)
    md = pf.metadata
    file_info = {
        "created_by": md.created_by,
        "format_version": md.format_version,
        "key_value_metadata_keys": sorted(k.decode() for k in (md.metadata or {}).keys()),
        "compression": sorted({md.row_group(0).column(i).compression for i in range(md.num_columns)}),
    }
    return cols, file_info


DATASET_NOTES = {
    "pyarrow": [
        "pyarrow.parquet.write_table defaults: version='2.6' (so timestamp[ns] stays TIMESTAMP(NANOS); "
        "with version='1.0' or '2.4' it would be coerced to microseconds), data_page_version='1.0', "
        "compression='snappy', use_dictionary=True, store_schema=True, decimals as FIXED_LEN_BYTE_ARRAY "
        "(store_decimal_as_integer=False).",
        "Types that exist only in the ARROW:schema key-value metadata: large_string (Parquet: String), "
        "dictionary<int32,string> (Parquet: String, dictionary-encoded), decimal256(38,4) (Parquet: "
        "FLBA(16) Decimal(38,4), read as decimal128(38,4) without the hint), the tz name Asia/Shanghai "
        "(Parquet only has isAdjustedToUTC=true), the Arrow list field name 'item' (Parquet writes "
        "'element').",
        "c_ts_sh is stored as the UTC instant (TIMESTAMP(MILLIS, isAdjustedToUTC=true)); "
        "the tz-naive columns are isAdjustedToUTC=false wall clocks.",
    ],
    "pyarrow_int96": [
        "Every timestamp column (ms, us, ns, tz=UTC, tz=Asia/Shanghai) is physical INT96 with no logical "
        "type: 8 bytes nanoseconds-of-day + 4 bytes Julian day. INT96 itself is lossless for these values "
        "(all are whole microseconds) and covers 0001..9999.",
        "By default this dataset is written with store_schema=False, like Hive/Spark files: no ARROW:schema, "
        "so readers infer large_string->string, dictionary->string, decimal256(38,4)->decimal128(38,4), "
        "and every INT96 column -> timestamp[ns] with no timezone (tz-aware columns hold the UTC instant, "
        "tz-naive columns the wall clock; the file does not say which).",
        "Reading INT96 as timestamp[ns] (pyarrow default, arrow-rs default without a schema hint) silently "
        "overflows for instants outside 1677-09-21..2262-04-11 (0001-01-01, 1582-10-04, 9999-12-31 ...). "
        "Read with pyarrow coerce_int96_timestamp_unit='us' or an arrow-rs ArrowReaderOptions::with_schema "
        "hint of Timestamp(Microsecond, _). arrow-rs (parquet 59 apply_hint) applies an embedded "
        "ARROW:schema hint to INT96 (ns->s/ms/us, with the hint's tz) when one is present "
        "(--int96-store-arrow-schema); pyarrow ignores that hint for INT96 and still reads timestamp[ns] "
        "without tz.",
        "INT96 has no isAdjustedToUTC flag: naive columns hold the wall clock, tz-aware columns the UTC "
        "instant; Spark/Hive readers may shift INT96 by the session time zone.",
    ],
    "pyarrow_encodings": [
        "Data page v2 with every codec pyarrow writes (zstd, gzip, brotli, lz4, snappy, uncompressed) and "
        "no dictionaries: DELTA_BINARY_PACKED or BYTE_STREAM_SPLIT integers, dates and timestamps, "
        "BYTE_STREAM_SPLIT floats and FLBA decimals, DELTA_LENGTH_BYTE_ARRAY / DELTA_BYTE_ARRAY strings "
        "and binary, RLE booleans, the same spread over the nested leaves (see kwargs).",
        "512-byte data pages (many pages per column chunk) and a page index.",
        "use_compliant_nested_type=False: lists as 'list'/'item' (the legacy naming of older Arrow and "
        "Spark writers), maps as key_value.",
        "store_schema=False: large_string and dictionary read as string, decimal256(38,4) as "
        "decimal128(38,4), Asia/Shanghai as UTC (the instants are unchanged).",
    ],
    "polars": [
        "polars' own Parquet writer (polars.DataFrame.write_parquet, not pyarrow), zstd, statistics on, "
        "ARROW:schema stored with polars' types: strings as large_string, binary as large_binary, lists as "
        "large_list, the dictionary column as dictionary<uint32, string> (a Categorical).",
        "c_map and c_dec256 are absent: polars has no map type (from_arrow turns a map into a list of "
        "structs) and no 256-bit decimal.",
        "Decimals as INT32 / INT64 / FLBA by precision, like Spark and DuckDB.",
    ],
    "spark": [
        "Written by Spark (parquet-mr) in local mode with its defaults, session time zone UTC: snappy, "
        "TimestampType as INT96 (c_ts_ms, c_ts_tz, c_ts_sh: instants, the wall clock in UTC), "
        "TIMESTAMP_NTZ as INT64 TIMESTAMP(MICROS, isAdjustedToUTC=false) (c_ts_us), decimals as INT32 / "
        "INT64 / FLBA by precision, 3-level lists (list/element), maps as key_value, root spark_schema, "
        "org.apache.spark.version and the Spark row schema in the key-value metadata.",
        "Columns Spark has no type for are absent: unsigned integers, timestamp[ns], large_string, "
        "dictionary, decimal256.",
        "Files are part-<slot>-<uuid>.c000.snappy.parquet beside Spark's .part-...crc checksums and a "
        "_SUCCESS marker; partition directories are Spark's (region=ap south, the space not escaped).",
    ],
    "spark_legacy": [
        "As spark, with spark.sql.parquet.writeLegacyFormat=true (decimals always FLBA; lists as "
        "bag/array 3-level groups; maps as MAP_KEY_VALUE key_value groups), "
        "spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS (INT64, isAdjustedToUTC=true) and the "
        "lz4 codec (Parquet LZ4, Hadoop-framed).",
    ],
    "duckdb": [
        "c_dec256 is absent: DuckDB cannot ingest Arrow decimal256 ('Unsupported Internal Arrow Type for "
        "Decimal').",
        "DuckDB writes every column OPTIONAL, so id becomes nullable (values are never null).",
        "large_string and dictionary<int32,string> become VARCHAR -> Parquet String (read as string).",
        "timestamp[us, tz=UTC] and timestamp[ms, tz=Asia/Shanghai] both become TIMESTAMPTZ -> "
        "TIMESTAMP(MICROS, isAdjustedToUTC=true), read as timestamp[us, tz=UTC]: Asia/Shanghai and "
        "the millisecond unit are lost; the instants are unchanged.",
        "timestamp[ms] and timestamp[ns] keep their units (TIMESTAMP_MS -> MILLIS, TIMESTAMP_NS -> NANOS); "
        "uint8..uint64 keep unsigned Int(bitWidth, false) annotations.",
        "Decimals: DECIMAL(9,2) -> INT32, DECIMAL(18,6) -> INT64, DECIMAL(38,10) -> FLBA(16) "
        "(pyarrow writes all three as FLBA).",
        "No ARROW:schema; Parquet format_version 1.0 metadata; root group named duckdb_schema.",
        "Under PARTITION_BY, DuckDB buffers per partition and ROW_GROUP_SIZE below 2048 (the vector size) "
        "is not honoured: each file here has one row group. COPY with PARTITION_BY cannot be combined with "
        "ROW_GROUPS_PER_FILE, so each file slot is a separate COPY with FILENAME_PATTERN 'part-NNNNN-c{i}'.",
        "Partition directory values are percent-encoded by DuckDB itself (region=ap%20south).",
        "File names are part-NNNNN-c0.parquet: DuckDB appends the {i} counter to FILENAME_PATTERN.",
    ],
}
COMMON_NOTES = [
    "Partition directories: dt=YYYY-MM-DD/region=<value> with Hive's escaping plus the space "
    "(region=ap%20south). Hive/Spark on Linux do NOT escape a space (they would write 'region=ap south'); "
    "a loader should percent-decode and also accept raw spaces.",
    "Partition columns dt and region are not stored inside the files.",
    "Files and directories whose name starts with '_' or '.' (at any level) and zero-byte files are not data; "
    "see 'skip'. The _expected.jsonl and _manifest.json sidecars are such files.",
    "_expected.jsonl is sorted by id. Row order inside the pyarrow files is ascending id; DuckDB's "
    "partitioned COPY keeps ORDER BY id only while a partition's rows fit its buffers (true at the default "
    "--rows 3000, not at e.g. 20000), so a loader must not rely on row order.",
]


def write_dataset_sidecars(ds_dir, dataset, values, layout, n, seed, rg, writer_info, skip, all_null_row):
    cols = columns_for(dataset)
    # oracle, from the Python-side values only
    with open(os.path.join(ds_dir, "_expected.jsonl"), "w", encoding="utf-8", newline="\n") as fh:
        for i in range(n):
            row = {name: canon_gen(kind, atype, values[name][i]) for name, atype, _sr, kind, _o in cols}
            row["dt"], row["region"] = layout.partition_of[i]
            fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    files = []
    by_key = {(f["part"], f["slot"]): f for f in layout.files}
    for rel in walk_data_files(ds_dir):
        p = os.path.join(ds_dir, rel)
        md = pq.ParquetFile(p).metadata
        files.append({
            "path": rel,
            "partition": partition_of_path(rel),
            "rows": md.num_rows,
            "row_groups": [md.row_group(i).num_rows for i in range(md.num_row_groups)],
            "bytes": os.path.getsize(p),
            "sha256": sha256_file(p),
        })
        slot = int(os.path.basename(rel).split("-")[1].split(".")[0])
        part = partition_of_path(rel)
        f = by_key[((part["dt"], part["region"]), slot)]
        assert md.num_rows == len(f["ids"]), (rel, md.num_rows, len(f["ids"]))
    assert sum(f["rows"] for f in files) == n
    columns, file_info = describe_columns(dataset, os.path.join(ds_dir, files[0]["path"]))
    manifest = {
        "dataset": dataset,
        "generator": "scripts/gen_corpus.py",
        "seed": seed,
        "row_count": n,
        "row_group_size_requested": rg,
        "writer": writer_info,
        "file_metadata": file_info,
        "columns": columns,
        "partition_columns": [dict(pc, values=list(DATES) if pc["name"] == "dt" else list(REGIONS))
                              for pc in PARTITION_COLUMNS],
        "partitions": [{"dt": d, "region": r, "dir": part_dir((d, r)),
                        "rows": sum(1 for i in range(n) if layout.partition_of[i] == (d, r))}
                       for d, r in layout.parts],
        "files": files,
        "skip": skip,
        "oracle": "_expected.jsonl",
        "all_null_row_id": all_null_row,
        "canonical_forms": {
            "null": "null", "integer": "decimal string", "bool": "true/false",
            "float32": {"f32": "8 lowercase hex digits"}, "float64": {"f64": "16 lowercase hex digits"},
            "decimal": {"dec": "unscaled integer string", "scale": "int"}, "date": "YYYY-MM-DD",
            "timestamp": {"ts_us": "microseconds since 1970-01-01T00:00:00Z (tz-naive read as UTC)"},
            "string": "JSON string", "binary": {"b64": "standard base64"}, "list": "array",
            "map": {"map": "[[key, value], ...] in stored order"}, "struct": "object of canonical fields",
        },
        "notes": COMMON_NOTES + DATASET_NOTES[dataset],
    }
    with open(os.path.join(ds_dir, "_manifest.json"), "w", encoding="utf-8", newline="\n") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    return manifest


def generate_corpus(out, seed, n, rg, datasets, int96_store_schema):
    if n < 200:
        raise SystemExit("--rows must be at least 200 (edge values are spread over distinct rows)")
    t0 = time.monotonic()
    layout, values, all_null_row = generate(n, seed)
    table = build_table(values, COLUMNS)
    os.makedirs(out, exist_ok=True)
    for ds in datasets:
        ds_dir = os.path.join(out, ds)
        if os.path.exists(ds_dir):
            shutil.rmtree(ds_dir)
        os.makedirs(ds_dir)
        skip = []
        if ds == "pyarrow":
            kw = write_pyarrow(ds_dir, table, layout, rg, int96=False, store_schema=True)
            info = {"library": "pyarrow", "version": pa.__version__, "call": "pyarrow.parquet.write_table", "kwargs": kw}
            skip = write_junk(ds_dir, table, layout, rg)
        elif ds == "pyarrow_int96":
            kw = write_pyarrow(ds_dir, table, layout, rg, int96=True, store_schema=int96_store_schema)
            info = {"library": "pyarrow", "version": pa.__version__, "call": "pyarrow.parquet.write_table", "kwargs": kw}
        elif ds == "polars":
            info = write_polars(ds_dir, table, layout, rg)
        elif ds in SPARK_DATASETS:
            info = write_spark(ds_dir, values, layout, legacy=ds == "spark_legacy")
            skip = spark_side_files(ds_dir)
        elif ds == "pyarrow_encodings":
            kw = write_pyarrow(ds_dir, table, layout, rg, int96=False, store_schema=False, encodings=True)
            info = {"library": "pyarrow", "version": pa.__version__, "call": "pyarrow.parquet.write_table", "kwargs": kw}
        else:
            info = {"library": "duckdb", **write_duckdb(ds_dir, values, layout, rg)}
        m = write_dataset_sidecars(ds_dir, ds, values, layout, n, seed, rg, info, skip, all_null_row)
        print(f"{ds}: {m['row_count']} rows, {len(m['files'])} files, {len(m['columns'])} columns -> {ds_dir}")
    print(f"generated in {time.monotonic() - t0:.2f}s")


# ----------------------------------------------------------------- verify ---

def verify_dataset(ds_dir, dataset):
    errors, info = [], []
    with open(os.path.join(ds_dir, "_manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    oracle = {}
    with open(os.path.join(ds_dir, "_expected.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            oracle[int(row["id"])] = row
    n = manifest["row_count"]
    if len(oracle) != n or sorted(oracle) != list(range(n)):
        errors.append(f"oracle has {len(oracle)} rows / ids not 0..{n - 1}")

    found = walk_data_files(ds_dir)
    listed = [f["path"] for f in manifest["files"]]
    if found != listed:
        extra = sorted(set(found) - set(listed))
        missing = sorted(set(listed) - set(found))
        errors.append(f"data files on disk differ from manifest: not listed {extra}, missing {missing}")
    for s in manifest["skip"]:
        if not os.path.exists(os.path.join(ds_dir, s["path"])):
            errors.append(f"skip entry missing: {s['path']}")

    expected_cols = [c["name"] for c in manifest["columns"]]
    expected_types = {c["name"]: c["arrow_type"] for c in manifest["columns"]}
    int96 = dataset in ("pyarrow_int96", "spark")
    read_kwargs = {"coerce_int96_timestamp_unit": "us"} if int96 else {}
    got = {}
    unordered_files = 0
    for f in manifest["files"]:
        p = os.path.join(ds_dir, f["path"])
        if sha256_file(p) != f["sha256"]:
            errors.append(f"{f['path']}: sha256 differs from manifest")
        pf = pq.ParquetFile(p)
        schema = pf.schema_arrow
        if schema.names != expected_cols:
            errors.append(f"{f['path']}: columns {schema.names} != manifest")
            continue
        for fld in schema:
            if str(fld.type) != expected_types[fld.name]:
                errors.append(f"{f['path']}: {fld.name} {fld.type} != manifest {expected_types[fld.name]}")
        if "dt" in schema.names or "region" in schema.names:
            errors.append(f"{f['path']}: partition column stored in file")
        md = pf.metadata
        rgs = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
        if rgs != f["row_groups"] or md.num_rows != f["rows"]:
            errors.append(f"{f['path']}: row groups {rgs} != manifest {f['row_groups']}")
        part = partition_of_path(f["path"])
        if part != f["partition"]:
            errors.append(f"{f['path']}: partition {part} != manifest {f['partition']}")
        tbl = pq.read_table(p, **read_kwargs)
        canon_cols = {name: canon_arrow(tbl.column(name).combine_chunks()) for name in tbl.column_names}
        ids = tbl.column("id").to_pylist()
        if ids != sorted(ids):
            if dataset == "duckdb" or dataset in SPARK_DATASETS:  # partitioned writes may reorder
                unordered_files += 1
            else:
                errors.append(f"{f['path']}: ids not ascending")
        for r, i in enumerate(ids):
            row = {name: canon_cols[name][r] for name in tbl.column_names}
            row["dt"], row["region"] = part["dt"], part["region"]
            if i in got:
                errors.append(f"id {i} appears twice")
            got[i] = row
    if unordered_files:
        info.append(f"{unordered_files} file(s) hold rows out of id order (allowed for duckdb)")
    if len(got) != n:
        errors.append(f"read {len(got)} rows, manifest says {n}")
    mismatches = 0
    for i in range(n):
        a, b = got.get(i), oracle.get(i)
        if a != b:
            mismatches += 1
            if mismatches <= 10:
                if a is None or b is None:
                    errors.append(f"id {i}: read={a is not None} oracle={b is not None}")
                else:
                    diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
                    errors.append(f"id {i}: read vs oracle differ: {json.dumps(diff, ensure_ascii=False)[:600]}")
    if mismatches > 10:
        errors.append(f"... {mismatches} rows differ in all")

    # skipped files really are what the manifest says
    for s in manifest["skip"]:
        p = os.path.join(ds_dir, s["path"])
        if s["kind"] == "zero_byte_parquet" and os.path.getsize(p) != 0:
            errors.append(f"{s['path']} should be zero bytes")
        if s["kind"] == "valid_parquet_bogus_rows":
            ids = pq.read_table(p).column("id").to_pylist()
            if min(ids) < BOGUS_ID_BASE:
                errors.append(f"{s['path']} has real ids")

    if dataset == "pyarrow_int96":  # demonstrate the default (ns) read of INT96
        bad = 0
        for f in manifest["files"]:
            tbl = pq.read_table(os.path.join(ds_dir, f["path"]))
            ids = tbl.column("id").to_pylist()
            for c in manifest["columns"]:
                if c.get("arrow_type_coerce_int96_us"):
                    vals = canon_arrow(tbl.column(c["name"]).combine_chunks())
                    bad += sum(1 for r, i in enumerate(ids) if vals[r] != oracle[i][c["name"]])
        info.append(f"default INT96->timestamp[ns] read (no coerce) gets {bad} timestamp values wrong (overflow)")
    return errors, info, n, len(manifest["files"])


def verify(out, datasets):
    t0 = time.monotonic()
    failed = 0
    passed = 0
    for ds in datasets:
        ds_dir = os.path.join(out, ds)
        if not os.path.exists(os.path.join(ds_dir, "_manifest.json")):
            print(f"{ds}: no _manifest.json under {ds_dir}")
            failed += 1
            continue
        errors, info, n, nfiles = verify_dataset(ds_dir, ds)
        for line in info:
            print(f"{ds}: note: {line}")
        if errors:
            failed += 1
            print(f"{ds}: FAIL")
            for e in errors:
                print(f"  {e}")
        else:
            passed += 1
            print(f"{ds}: OK ({n} rows in {nfiles} files match _expected.jsonl)")
    print(f"verified in {time.monotonic() - t0:.2f}s")
    print(f"{passed} passed, {failed} failed")
    return failed == 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", help="directory to (re)write the datasets into")
    g.add_argument("--verify", metavar="DIR", help="read DIR's datasets back and compare with the oracles")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--row-group-size", type=int, default=64,
                    help="rows per row group for the pyarrow writers (DuckDB ignores values < 2048 here)")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset of " + ",".join(DATASETS))
    ap.add_argument("--int96-store-arrow-schema", action="store_true",
                    help="keep the ARROW:schema metadata in pyarrow_int96 (default: omit it, as Hive/Spark do)")
    args = ap.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    for d in datasets:
        if d not in DATASETS + SPARK_DATASETS:
            ap.error(f"unknown dataset {d}")
    if args.verify:
        return 0 if verify(args.verify, datasets) else 1
    generate_corpus(args.out, args.seed, args.rows, args.row_group_size, datasets, args.int96_store_arrow_schema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
