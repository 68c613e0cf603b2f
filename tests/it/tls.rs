//! HTTPS to the FE and the BEs with a private CA: the loader trusts exactly
//! the CA named by `ca_file`, follows an `https://` redirect with the
//! credentials, and refuses a server it cannot verify without sending rows.

use std::path::Path;
use std::process::Command;

use starload::sim::TlsFiles;

use crate::support::*;

/// A CA and a server certificate for 127.0.0.1 / localhost it signed,
/// made with the openssl command line.
fn make_certs(dir: &Path) -> (TlsFiles, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=starload test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (TlsFiles { cert: dir.join("server.pem"), key: dir.join("server.key") }, dir.join("ca.pem"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca() {
    let certs = tempfile::tempdir().unwrap();
    let (files, ca) = make_certs(certs.path());
    let dir = corpus().join("pyarrow");
    let sim = sim_with(vec![corpus_table(&dir, "corpus", "t")], |c| c.tls = Some(files)).await;
    assert!(sim.fe_url().starts_with("https://"));

    // Without the CA the server cannot be verified: nothing is loaded, and
    // the error says why.
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &dir, "corpus.t", state.path());
    f.max_retries = Some(1);
    let err = load(f).await.expect_err("an unverifiable server must be refused");
    let msg = err.to_string();
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");
    assert!(!msg.contains(PASSWORD), "{msg}");
    assert_eq!(sim.count("corpus", "t"), 0);

    // With it, every row arrives through the https redirect to the BE.
    let state = tempfile::tempdir().unwrap();
    let mut f = job_file(&sim, &dir, "corpus.t", state.path());
    f.ca_file = Some(ca);
    f.chunk_bytes = Some(starload::config::ByteSize(starload::config::parse_bytes("64KiB").unwrap()));
    let report = load(f).await.unwrap_or_else(|e| panic!("https load failed: {e}"));
    let exp = expected(&dir);
    assert_eq!(report.load.rows_loaded as usize, exp.len());
    assert!(report.load.chunks > 1);
    let got = stored(&sim, "corpus", "t");
    assert_same(&exp, &got, &|k, v| if k == "c_struct" { struct_as_json(v) } else { v.clone() });
}
