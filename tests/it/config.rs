//! The configuration reference stays true: every job-file key is documented
//! in `docs/configuration.md`, every documented key exists, every key that is
//! not *file only* has its flag, and the example job files parse and print.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use starload::config::JobFile;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `(key, row)` for each row of the reference table.
fn documented() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("| key |") {
            in_table = true;
            continue;
        }
        if in_table && !line.starts_with('|') {
            break;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        let cell = line.split('|').nth(1).unwrap().trim();
        let key = cell.trim_matches('`').trim_start_matches('[').trim_end_matches(']');
        rows.push((key.to_string(), line.to_string()));
    }
    assert!(rows.len() > 20, "the reference table was not found ({} rows)", rows.len());
    rows
}

/// Every key `JobFile` accepts, from its own serialisation.
fn job_file_keys() -> BTreeSet<String> {
    let v = serde_json::to_value(JobFile::default()).unwrap();
    v.as_object().unwrap().keys().cloned().collect()
}

fn help(cmd: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_starload")).args([cmd, "--help"]).output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn every_key_is_documented_and_every_documented_key_exists() {
    let doc: BTreeSet<String> = documented().into_iter().map(|(k, _)| k).collect();
    let code = job_file_keys();
    let undocumented: Vec<_> = code.difference(&doc).collect();
    let unknown: Vec<_> = doc.difference(&code).collect();
    assert!(undocumented.is_empty(), "keys missing from docs/configuration.md: {undocumented:?}");
    assert!(unknown.is_empty(), "docs/configuration.md lists keys the job file rejects: {unknown:?}");
    // And the job file really accepts each documented key (deny_unknown_fields).
    for key in &doc {
        let toml = match key.as_str() {
            "transform" | "partition_types" | "s3" | "hdfs" | "headers" | "bitmap_dict" => format!("[{key}]\n"),
            _ => continue,
        };
        toml::from_str::<JobFile>(&toml).unwrap_or_else(|e| panic!("[{key}]: {e}"));
    }
}

#[test]
fn every_key_that_is_not_file_only_has_its_flag() {
    let load = help("load");
    for (key, row) in documented() {
        if row.contains("*file only*") {
            continue;
        }
        let flags: Vec<String> = if key == "transform" {
            vec!["--select".into(), "--where".into(), "--clock".into()]
        } else {
            vec![format!("--{}", key.replace('_', "-"))]
        };
        for flag in flags {
            let present =
                load.split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '<').any(|w| w == flag);
            assert!(present, "`{key}` is documented as a flag but `starload load --help` has no {flag}");
        }
    }
    // And the flags the table names in prose exist too.
    assert!(load.contains("--bitmap-dict"));
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("docs/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(v.len() >= 3, "{v:?}");
    v
}

#[test]
fn example_job_files_parse_and_print_redacted() {
    for path in examples() {
        let f = JobFile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(f.table.is_some(), "{}: no table", path.display());
        assert!(f.source.is_some() || f.hive_table.is_some(), "{}: no source", path.display());
        let o = Command::new(env!("CARGO_BIN_EXE_starload"))
            .args(["load", "--print-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&o.stderr));
        let printed: JobFile = toml::from_str(&String::from_utf8(o.stdout).unwrap()).unwrap();
        assert_eq!(printed.table, f.table, "{}", path.display());
        assert_eq!(printed.mode, f.mode, "{}", path.display());
    }
}

#[test]
fn print_config_redacts_secrets_and_flags_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "source = \"s3://b/p\"\ntable = \"d.t\"\nparallel = 2\n[s3]\naccess_key_id = \"AKIAEXAMPLEKEYID\"\n\
         secret_access_key = \"very-secret-value\"\nregion = \"eu-west-1\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_starload"))
        .args(["load", "--print-config", "--parallel", "7", "--config"])
        .arg(&job)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(!out.contains("very-secret-value") && !out.contains("AKIAEXAMPLEKEYID"), "{out}");
    let printed: JobFile = toml::from_str(&out).unwrap();
    assert_eq!(printed.parallel, Some(7), "the flag overrides the file");
    assert_eq!(printed.s3.get("region").map(String::as_str), Some("eu-west-1"));
}

#[test]
fn unknown_keys_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "source = \"x\"\nchunk_byts = \"1GiB\"\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_starload")).args(["plan", "--config"]).arg(&job).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "a configuration error exits 2");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("chunk_byts") && err.contains(job.to_str().unwrap()), "{err}");
}

#[test]
fn docs_links_resolve() {
    // Every relative link in README.md and docs/*.md points at a file that exists.
    let mut files = vec![repo().join("README.md")];
    for e in std::fs::read_dir(repo().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "md") {
            files.push(p);
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let path = target.split('#').next().unwrap();
            let resolved = f.parent().unwrap_or(Path::new(".")).join(path);
            assert!(resolved.exists(), "{}: broken link `{target}`", f.display());
        }
    }
}

/// Targets of markdown links `[text](target)`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        if let Some(j) = after.find(')') {
            out.push(after[..j].to_string());
            rest = &after[j..];
        } else {
            break;
        }
    }
    out
}

#[test]
fn headers_that_change_what_the_be_reads_cannot_be_set() {
    for h in ["timeout", "strip_outer_array", "partial_update", "merge_condition", "trim_space", "enclose", "jsonpaths"]
    {
        let mut f = starload::config::JobFile {
            source: Some("/tmp/x".into()),
            table: Some("db.t".into()),
            ..Default::default()
        };
        f.headers.insert(h.into(), "1".into());
        let e = starload::job::Settings::resolve(f).unwrap_err().to_string();
        assert!(e.contains(h), "{h}: {e}");
    }
}

#[test]
fn values_that_cannot_work_are_refused_at_once() {
    let base = || starload::config::JobFile {
        source: Some("/tmp/x".into()),
        table: Some("db.t".into()),
        ..Default::default()
    };
    let cases: Vec<(starload::config::JobFile, &str)> = vec![
        (starload::config::JobFile { log_format: Some("xml".into()), ..base() }, "log_format"),
        (starload::config::JobFile { http_timeout_secs: Some(0), ..base() }, "http_timeout_secs"),
        (starload::config::JobFile { source_timeout_secs: Some(0), ..base() }, "source_timeout_secs"),
        (starload::config::JobFile { batch_size: Some(0), ..base() }, "batch_size"),
        (starload::config::JobFile { parallel: Some(0), ..base() }, "parallel"),
        (starload::config::JobFile { per_be_parallel: Some(0), ..base() }, "per_be_parallel"),
    ];
    for (f, key) in cases {
        let e = starload::job::Settings::resolve(f).unwrap_err();
        assert_eq!(e.kind(), starload::ErrorKind::Config, "{key}: {e}");
        assert!(e.to_string().contains(key), "{key}: {e}");
    }
    let ok = starload::config::JobFile { log_format: Some("JSON".into()), ..base() };
    starload::job::Settings::resolve(ok).unwrap();
}
