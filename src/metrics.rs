//! Prometheus metrics of a run, in the text exposition format: written to a
//! file for node_exporter's textfile collector (atomically, by rename) or
//! pushed to a Pushgateway.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::job::Report;

/// What one run is labelled with.
#[derive(Debug, Clone)]
pub struct RunLabels {
    /// `db.table`.
    pub target: String,
    /// Load mode.
    pub mode: String,
    /// Job fingerprint (empty when planning failed).
    pub job: String,
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The metrics text of a finished (or failed) run.
pub fn render(
    labels: &RunLabels,
    report: Option<&Report>,
    exit_code: u8,
    seconds: f64,
    finished_at_unix: f64,
) -> String {
    let l = format!("target=\"{}\",mode=\"{}\",job=\"{}\"", esc(&labels.target), esc(&labels.mode), esc(&labels.job));
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, v: f64| {
        let _ = writeln!(out, "# HELP starload_{name} {help}");
        let _ = writeln!(out, "# TYPE starload_{name} {kind}");
        let _ = writeln!(out, "starload_{name}{{{l}}} {v}");
    };
    metric("success", "gauge", "1 if the last run succeeded, else 0.", if exit_code == 0 { 1.0 } else { 0.0 });
    metric(
        "exit_code",
        "gauge",
        "Exit code of the last run (0 ok, 2 config, 3 data, 4 infrastructure, 5 verification).",
        exit_code as f64,
    );
    metric("run_seconds", "gauge", "Wall time of the last run.", seconds);
    metric("last_run_timestamp_seconds", "gauge", "When the last run ended (Unix time).", finished_at_unix);
    if exit_code == 0 {
        metric(
            "last_success_timestamp_seconds",
            "gauge",
            "When the last successful run ended (Unix time).",
            finished_at_unix,
        );
    }
    if let Some(r) = report {
        let d = &r.load;
        metric("rows_loaded", "gauge", "Rows StarRocks reported loaded by the last run.", d.rows_loaded as f64);
        metric("rows_sent", "gauge", "Rows sent by the last run.", d.rows_sent as f64);
        metric("rows_skipped", "gauge", "Rows of chunks already committed before the last run.", d.rows_skipped as f64);
        metric("bytes_sent", "gauge", "Stream Load body bytes sent by the last run.", d.bytes_sent as f64);
        metric(
            "bytes_on_wire",
            "gauge",
            "Body bytes the last run's chunk loads put on the wire (LZ4 frames with compress = lz4; every attempt).",
            d.bytes_on_wire as f64,
        );
        metric("chunks", "gauge", "Chunks in the plan.", d.chunks as f64);
        metric("chunks_loaded", "gauge", "Chunks the last run committed.", d.chunks_loaded as f64);
        metric("chunks_skipped", "gauge", "Chunks already committed before the last run.", d.chunks_skipped as f64);
        metric("retries", "gauge", "Retries in the last run (all causes).", d.retries as f64);
        metric("throttled", "gauge", "Throttling replies met in the last run.", d.throttled as f64);
        metric(
            "plan_seconds",
            "gauge",
            "Seconds spent listing, reading footers and checking the table.",
            r.plan_seconds,
        );
        metric("load_seconds", "gauge", "Seconds spent loading.", d.seconds);
        metric(
            "decode_seconds",
            "gauge",
            "Seconds spent reading and decoding Parquet (summed over chunks).",
            d.stages.decode_seconds,
        );
        metric("encode_seconds", "gauge", "Seconds spent encoding (summed over chunks).", d.stages.encode_seconds);
        metric(
            "send_wait_seconds",
            "gauge",
            "Seconds waiting for StarRocks to take data (summed).",
            d.stages.send_wait_seconds,
        );
    }
    out
}

/// Writes the metrics for node_exporter's textfile collector.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Error::config(format!("cannot write metrics file `{}`: {e}", path.display())))
}

/// Pushes the metrics to a Pushgateway (`PUT <url>/metrics/job/starload/target/<db.table>`).
pub async fn push(url: &str, target: &str, text: &str) -> Result<()> {
    let u = format!("{}/metrics/job/starload/target/{}", url.trim_end_matches('/'), target);
    let resp = reqwest::Client::new()
        .put(&u)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(text.to_string())
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| {
            let e = e.without_url();
            Error::infra(format!("cannot push metrics to {}: {e}", crate::config::redact_url(url)))
        })?;
    if !resp.status().is_success() {
        return Err(Error::infra(format!(
            "the Pushgateway at {} answered HTTP {}",
            crate::config::redact_url(url),
            resp.status()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let labels = RunLabels { target: "db.t".into(), mode: "append".into(), job: "ab\"c".into() };
        let t = render(&labels, None, 4, 1.5, 1700000000.0);
        assert!(t.contains("# TYPE starload_success gauge"));
        assert!(t.contains("starload_success{target=\"db.t\",mode=\"append\",job=\"ab\\\"c\"} 0"));
        assert!(t.contains("starload_exit_code{target=\"db.t\",mode=\"append\",job=\"ab\\\"c\"} 4"));
        assert!(!t.contains("last_success"));
    }
}
