#!/usr/bin/env python3
"""Create Hive databases, external tables and partitions in a Hive Metastore over Thrift.

Pure Thrift client (no JVM, no Spark). Needs, pinned:

    pip install pymetastore==0.4.2 thrift==0.25.0

(pymetastore is used only for its generated Thrift stubs; thrift 0.25.0 ships wheels.)
Works against Hive 3.1.3 and 4.0.1 metastores (it uses get_table_req, which both serve).

Usage:
    hms_populate.py [--uri thrift://127.0.0.1:9083] SPEC.json      # SPEC.json or '-' for stdin
    hms_populate.py [--uri ...] --show DB.TABLE                     # print a table as JSON
    hms_populate.py [--uri ...] --drop DB.TABLE                     # drop a table (metadata only)

The URI defaults to $STARLOAD_TEST_HMS, else thrift://127.0.0.1:9083.

SPEC is one table object, a list of them, or {"databases": [...], "tables": [...]}:

    {
      "db": "sales",                       # created if missing
      "table": "orders",
      "columns": [{"name": "id", "type": "bigint"},
                  {"name": "amount", "type": "decimal(10,2)", "comment": "optional"}],
      "partition_keys": [{"name": "dt", "type": "string"}],     # optional
      "location": "file:///data/orders",  # or hdfs://127.0.0.1:9000/..., s3a://bucket/...
      "format": "parquet",                # parquet (default) | orc | textfile | csv
      "external": true,                   # default true (EXTERNAL_TABLE, EXTERNAL=TRUE)
      "properties": {"k": "v"},           # optional table parameters
      "serde_properties": {"k": "v"},     # optional (textfile/csv: field.delim etc.)
      "replace": true,                    # default true: drop an existing table first
      "partitions": [
        {"values": ["2024-01-01"]},                          # location: LOCATION/dt=2024-01-01
        {"values": ["2024-01-02"], "location": "file:///elsewhere/p2"}   # outside the table dir
      ]
    }

Databases may also be given explicitly: {"name": "sales", "location": "file:///wh/sales.db"}.
Plain local paths (starting with '/') are turned into file:// URIs.
"""

import argparse
import json
import os
import sys
import time
import urllib.parse

from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TTransport

from pymetastore.hive_metastore import ThriftHiveMetastore
from pymetastore.hive_metastore.ttypes import (
    AlreadyExistsException,
    Database,
    FieldSchema,
    GetTableRequest,
    NoSuchObjectException,
    Partition,
    PrincipalType,
    SerDeInfo,
    StorageDescriptor,
    Table,
)

FORMATS = {
    "parquet": (
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        {"serialization.format": "1"},
    ),
    "orc": (
        "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
        "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat",
        "org.apache.hadoop.hive.ql.io.orc.OrcSerde",
        {"serialization.format": "1"},
    ),
    "textfile": (
        "org.apache.hadoop.mapred.TextInputFormat",
        "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
        {"serialization.format": "\x01", "field.delim": "\x01"},
    ),
    "csv": (
        "org.apache.hadoop.mapred.TextInputFormat",
        "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
        {"serialization.format": ",", "field.delim": ","},
    ),
}


class Hms:
    """A connected ThriftHiveMetastore client (context manager)."""

    def __init__(self, uri, timeout_s=30.0):
        u = urllib.parse.urlparse(uri)
        if u.scheme != "thrift" or not u.hostname:
            raise ValueError(f"expected thrift://HOST:PORT, got {uri!r}")
        sock = TSocket.TSocket(u.hostname, u.port or 9083)
        sock.setTimeout(int(timeout_s * 1000))
        self.transport = TTransport.TBufferedTransport(sock)
        protocol = TBinaryProtocol.TBinaryProtocolAccelerated(self.transport)
        self.client = ThriftHiveMetastore.Client(protocol)

    def __enter__(self):
        self.transport.open()
        return self.client

    def __exit__(self, *exc):
        self.transport.close()


def to_uri(loc):
    if loc is None:
        return None
    if loc.startswith("/"):
        return "file://" + loc
    return loc


def ensure_database(client, name, location=None, description=None):
    try:
        return client.get_database(name)
    except NoSuchObjectException:
        pass
    db = Database(
        name=name,
        description=description,
        locationUri=to_uri(location),
        parameters={},
        ownerName=os.environ.get("USER", "starload"),
        ownerType=PrincipalType.USER,
    )
    try:
        client.create_database(db)
    except AlreadyExistsException:
        pass
    return client.get_database(name)


def get_table(client, db, name):
    # Hive 4 removed the old get_table(db, name) call; get_table_req works on Hive 3 and 4.
    return client.get_table_req(GetTableRequest(dbName=db, tblName=name)).table


def _fields(cols):
    return [FieldSchema(name=c["name"], type=c["type"], comment=c.get("comment")) for c in cols]


def create_table(client, spec):
    db = spec["db"]
    name = spec["table"]
    fmt = spec.get("format", "parquet").lower()
    if fmt not in FORMATS:
        raise ValueError(f"{db}.{name}: unknown format {fmt!r} (one of {sorted(FORMATS)})")
    in_fmt, out_fmt, serde, serde_params = FORMATS[fmt]
    serde_params = dict(serde_params)
    serde_params.update(spec.get("serde_properties", {}))
    external = spec.get("external", True)
    location = to_uri(spec.get("location"))
    cols = _fields(spec["columns"])
    part_keys = _fields(spec.get("partition_keys", []))

    ensure_database(client, db)
    if spec.get("replace", True):
        try:
            client.drop_table(db, name, False)
        except NoSuchObjectException:
            pass

    def sd_for(loc):
        return StorageDescriptor(
            cols=cols,
            location=loc,
            inputFormat=in_fmt,
            outputFormat=out_fmt,
            compressed=False,
            numBuckets=-1,
            serdeInfo=SerDeInfo(name=name, serializationLib=serde, parameters=serde_params),
            bucketCols=[],
            sortCols=[],
            parameters={},
            storedAsSubDirectories=False,
        )

    params = dict(spec.get("properties", {}))
    if external:
        params["EXTERNAL"] = "TRUE"
    now = int(time.time())
    table = Table(
        tableName=name,
        dbName=db,
        owner=os.environ.get("USER", "starload"),
        createTime=now,
        lastAccessTime=0,
        retention=0,
        sd=sd_for(location),
        partitionKeys=part_keys,
        parameters=params,
        tableType="EXTERNAL_TABLE" if external else "MANAGED_TABLE",
    )
    client.create_table(table)
    created = get_table(client, db, name)
    table_loc = created.sd.location

    parts = []
    for p in spec.get("partitions", []):
        values = [str(v) for v in p["values"]]
        if len(values) != len(part_keys):
            raise ValueError(f"{db}.{name}: partition {values} does not match keys {[k.name for k in part_keys]}")
        loc = to_uri(p.get("location"))
        if loc is None:
            sub = "/".join(f"{k.name}={_escape_part(v)}" for k, v in zip(part_keys, values))
            loc = table_loc.rstrip("/") + "/" + sub
        parts.append(
            Partition(
                values=values,
                dbName=db,
                tableName=name,
                createTime=now,
                lastAccessTime=0,
                sd=sd_for(loc),
                parameters=dict(p.get("properties", {})),
            )
        )
    if parts:
        client.add_partitions(parts)
    return created


def _escape_part(v):
    # Hive's FileUtils.escapePathName for the characters that matter in tests
    out = []
    for ch in v:
        if ch in '"#%\'*/:=?\\\x7f{[]^' or ord(ch) < 0x20:
            out.append("%%%02X" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def describe(client, db, name):
    t = get_table(client, db, name)
    parts = client.get_partitions(db, name, -1) if t.partitionKeys else []
    return {
        "db": t.dbName,
        "table": t.tableName,
        "type": t.tableType,
        "location": t.sd.location,
        "input_format": t.sd.inputFormat,
        "output_format": t.sd.outputFormat,
        "serde": t.sd.serdeInfo.serializationLib,
        "columns": [{"name": c.name, "type": c.type} for c in t.sd.cols],
        "partition_keys": [{"name": c.name, "type": c.type} for c in t.partitionKeys],
        "parameters": t.parameters,
        "partitions": sorted(
            ({"values": p.values, "location": p.sd.location} for p in parts), key=lambda p: p["values"]
        ),
    }


def load_spec(path):
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    spec = json.loads(text)
    if isinstance(spec, list):
        return [], spec
    if "tables" in spec or "databases" in spec:
        return spec.get("databases", []), spec.get("tables", [])
    return [], [spec]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uri", default=os.environ.get("STARLOAD_TEST_HMS", "thrift://127.0.0.1:9083"))
    ap.add_argument("--show", metavar="DB.TABLE")
    ap.add_argument("--drop", metavar="DB.TABLE")
    ap.add_argument("spec", nargs="?", help="JSON spec file, or - for stdin")
    a = ap.parse_args(argv)
    with Hms(a.uri) as client:
        if a.show:
            db, name = a.show.split(".", 1)
            print(json.dumps(describe(client, db, name), indent=2))
            return 0
        if a.drop:
            db, name = a.drop.split(".", 1)
            try:
                client.drop_table(db, name, False)
            except NoSuchObjectException:
                pass
            return 0
        if not a.spec:
            ap.error("a SPEC file is required (or --show/--drop)")
        dbs, tables = load_spec(a.spec)
        for d in dbs:
            ensure_database(client, d["name"], d.get("location"), d.get("comment"))
        for t in tables:
            created = create_table(client, t)
            n = len(t.get("partitions", []))
            print(f"created {created.dbName}.{created.tableName} at {created.sd.location} ({n} partitions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
