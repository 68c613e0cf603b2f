#!/usr/bin/env python3
"""Check the servers started by up.sh: S3 credentials, HDFS writes, Hive Metastore tables.

    scripts/servers/up.sh && python3 scripts/servers/selftest.py; scripts/servers/down.sh

Reads $STARLOAD_SERVERS_DIR/servers.env (default /tmp/starload-servers). Needs boto3 for the S3
check and pymetastore==0.4.2 + thrift==0.25.0 for the metastore check; a server missing from the
env file is skipped. Ends with a line "N passed, N failed".
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
results = []
scratch = []  # temp dirs removed at exit


def tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    scratch.append(d)
    return d


def check(name, fn):
    t = time.time()
    try:
        fn()
        results.append(True)
        print(f"ok   {name} ({time.time() - t:.2f} s)")
    except Exception as e:  # noqa: BLE001 - report every failure
        results.append(False)
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def load_env():
    path = os.path.join(os.environ.get("STARLOAD_SERVERS_DIR", "/tmp/starload-servers"), "servers.env")
    env = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            line = line.strip()
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].split("=", 1)
                env[k] = v
    for k, v in os.environ.items():
        if k.startswith("STARLOAD_TEST_"):
            env[k] = v
    return env


def s3_checks(env):
    import boto3
    import botocore
    from botocore.config import Config

    endpoint = env["STARLOAD_TEST_S3_ENDPOINT"]

    def client(ak, sk):
        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ak,
            aws_secret_access_key=sk,
            region_name=env.get("STARLOAD_TEST_S3_REGION", "us-east-1"),
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    good = client(env["STARLOAD_TEST_S3_ACCESS_KEY"], env["STARLOAD_TEST_S3_SECRET_KEY"])
    bucket = f"selftest-{int(time.time() * 1000)}"

    def put_good():
        good.create_bucket(Bucket=bucket)
        good.put_object(Bucket=bucket, Key="dir/obj.txt", Body=b"hello")
        assert good.get_object(Bucket=bucket, Key="dir/obj.txt")["Body"].read() == b"hello"

    def refused(ak, sk):
        def f():
            try:
                client(ak, sk).put_object(Bucket=bucket, Key="nope", Body=b"x")
            except botocore.exceptions.ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response
                return
            raise AssertionError("PUT with bad credentials was accepted")

        return f

    def anonymous():
        req = urllib.request.Request(f"{endpoint}/{bucket}/anon", data=b"x", method="PUT")
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 403, e.code
            return
        raise AssertionError("anonymous PUT was accepted")

    check("s3: PUT/GET with the right keys", put_good)
    check("s3: PUT with a wrong secret is refused", refused(env["STARLOAD_TEST_S3_ACCESS_KEY"], "wrong"))
    check("s3: PUT with an unknown key is refused", refused("unknown", env["STARLOAD_TEST_S3_SECRET_KEY"]))
    check("s3: anonymous PUT is refused", anonymous)


def hdfs_checks(env):
    uri = env["STARLOAD_TEST_HDFS"]
    cp = subprocess.run([os.path.join(HERE, "minidfs.sh"), "classpath"], check=True, capture_output=True,
                        text=True).stdout.strip()
    conf = tmpdir("selftest-hconf-")
    for f in ("core-site.xml", "hdfs-site.xml"):  # FsShell insists on finding them
        with open(os.path.join(conf, f), "w") as fh:
            fh.write("<?xml version='1.0'?><configuration></configuration>\n")

    def fs(user, *args):
        e = dict(os.environ, HADOOP_USER_NAME=user)
        r = subprocess.run(["java", "-cp", f"{conf}:{cp}", "org.apache.hadoop.fs.FsShell", "-fs", uri, *args],
                           env=e, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"hdfs dfs {' '.join(args)} as {user}: {r.stderr.strip()[-500:]}")
        return r.stdout

    local = os.path.join(conf, "f.txt")
    with open(local, "w") as fh:
        fh.write("hello hdfs\n")
    d = f"/selftest/{int(time.time() * 1000)}"

    def write_read():
        fs("alice", "-mkdir", "-p", d)
        fs("alice", "-put", local, f"{d}/a.txt")
        # another simple-auth user writes into alice's 755 directory: permissions are off
        fs("bob", "-put", local, f"{d}/b.txt")
        assert fs("carol", "-cat", f"{d}/b.txt") == "hello hdfs\n"

    check("hdfs: mkdir/put/cat as several simple-auth users", write_read)


def hms_checks(env):
    sys.path.insert(0, HERE)
    import hms_populate

    uri = env["STARLOAD_TEST_HMS"]
    base = tmpdir("selftest-hms-")
    hdfs = env.get("STARLOAD_TEST_HDFS")
    tables = [
        {
            "db": "selftest",
            "table": "local_parquet",
            "columns": [{"name": "id", "type": "bigint"}, {"name": "v", "type": "decimal(12,3)"}],
            "partition_keys": [{"name": "dt", "type": "string"}, {"name": "h", "type": "int"}],
            "location": f"{base}/t1",
            "partitions": [
                {"values": ["2024-01-01", 0]},
                {"values": ["2024-01-02", 5], "location": f"{base}/outside/p2"},
            ],
        },
        {
            "db": "selftest",
            "table": "s3_orc",
            "format": "orc",
            "columns": [{"name": "k", "type": "string"}],
            "partition_keys": [{"name": "p", "type": "string"}],
            "location": "s3a://selftest-bucket/t2",
            "partitions": [{"values": ["a"]}, {"values": ["b"], "location": "s3a://other-bucket/b"}],
        },
    ]
    if hdfs:
        tables.append(
            {
                "db": "selftest",
                "table": "hdfs_parquet",
                "columns": [{"name": "id", "type": "int"}],
                "partition_keys": [{"name": "dt", "type": "date"}],
                "location": f"{hdfs}/selftest/t3",
                "partitions": [{"values": ["2024-01-01"]}, {"values": ["2024-01-02"], "location": f"{hdfs}/x/p2"}],
            }
        )

    def populate():
        with hms_populate.Hms(uri) as c:
            for t in tables:
                hms_populate.create_table(c, t)
            for t in tables:
                d = hms_populate.describe(c, t["db"], t["table"])
                assert d["type"] == "EXTERNAL_TABLE", d
                assert [k["name"] for k in d["partition_keys"]] == [k["name"] for k in t["partition_keys"]]
                assert len(d["partitions"]) == len(t["partitions"]), d
                outside = t["partitions"][1]["location"].replace("file://", "")
                assert any(p["location"].endswith(outside.split("//", 1)[-1]) for p in d["partitions"]), d
        assert os.path.isdir(f"{base}/t1/dt=2024-01-01/h=0"), "metastore did not create the partition dir"

    check("hms: create database, external partitioned tables, partitions (local, s3a, hdfs)", populate)


def main():
    env = load_env()
    if "STARLOAD_TEST_S3_ENDPOINT" in env:
        s3_checks(env)
    else:
        print("skip s3 (no STARLOAD_TEST_S3_ENDPOINT)")
    if "STARLOAD_TEST_HDFS" in env:
        hdfs_checks(env)
    else:
        print("skip hdfs (no STARLOAD_TEST_HDFS)")
    if "STARLOAD_TEST_HMS" in env:
        hms_checks(env)
    else:
        print("skip hms (no STARLOAD_TEST_HMS)")
    for d in scratch:
        shutil.rmtree(d, ignore_errors=True)
    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
