//! Scripted faults: by BE request number or by label.

use serde::Deserialize;

/// When a fault fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// The n-th load request a BE receives (1-based).
    Request(u64),
    /// Any load whose label contains this text.
    Label(String),
    /// Every load.
    Any,
}

/// What happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Drop the connection before the BE begins anything: a request lost on
    /// the way, of which StarRocks keeps no trace (its label is unknown).
    Unreachable,
    /// Drop the connection before reading the body (the transaction, begun
    /// on headers, aborts).
    ResetBeforeBody,
    /// Commit, then drop the connection without replying.
    ResetAfterCommit,
    /// Reply `Fail` with this message (transaction aborted).
    Fail(String),
    /// Commit, reply `Publish Timeout`.
    PublishTimeout,
    /// Wait this many milliseconds before replying.
    Delay(u64),
    /// Read the body at no more than this many bytes per second (a slow or
    /// saturated BE: the client's writes block).
    SlowRead(u64),
    /// Reply with this HTTP status and an HTML body (after reading the body,
    /// without committing).
    Http(u16),
    /// Commit, then reply with an unreadable body.
    Garbage,
    /// Reply `Label Already Exists` / `RUNNING` without loading.
    LabelRunning,
    /// Lose the last row of a CSV body, then load and commit the rest (a BE
    /// that stores other rows than it was sent; verification must notice).
    LoseRow,
}

/// A fault with its trigger and how many times it may fire.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Trigger.
    pub trigger: Trigger,
    /// Fault.
    pub fault: Fault,
    /// Remaining firings.
    pub times: u32,
}

impl FaultRule {
    /// A rule firing once on the n-th BE request.
    pub fn on_request(n: u64, fault: Fault) -> FaultRule {
        FaultRule { trigger: Trigger::Request(n), fault, times: 1 }
    }
    /// A rule firing once on a label.
    pub fn on_label(label: &str, fault: Fault) -> FaultRule {
        FaultRule { trigger: Trigger::Label(label.into()), fault, times: 1 }
    }
}

/// A rule in a faults file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// BE request number.
    pub request: Option<u64>,
    /// Label substring.
    pub label: Option<String>,
    /// Firings (default 1).
    pub times: Option<u32>,
    /// `unreachable`, `reset_before_body`, `reset_after_commit`, `fail`, `publish_timeout`,
    /// `delay`, `slow_read`, `http`, `garbage`, `label_running`, `lose_row`.
    pub fault: String,
    /// Message for `fail`.
    pub message: Option<String>,
    /// Milliseconds for `delay`.
    pub ms: Option<u64>,
    /// Bytes per second for `slow_read`.
    pub bytes_per_sec: Option<u64>,
    /// Status for `http`.
    pub status: Option<u16>,
}

impl FaultSpec {
    /// Converts to a rule.
    pub fn into_rule(self) -> Result<FaultRule, String> {
        let trigger = match (self.request, self.label) {
            (Some(n), None) => Trigger::Request(n),
            (None, Some(l)) => Trigger::Label(l),
            (None, None) => Trigger::Any,
            _ => return Err("a fault has either `request` or `label`".into()),
        };
        let fault = match self.fault.as_str() {
            "unreachable" => Fault::Unreachable,
            "reset_before_body" => Fault::ResetBeforeBody,
            "reset_after_commit" => Fault::ResetAfterCommit,
            "fail" => Fault::Fail(self.message.unwrap_or_else(|| "injected failure".into())),
            "publish_timeout" => Fault::PublishTimeout,
            "delay" => Fault::Delay(self.ms.unwrap_or(1000)),
            "slow_read" => Fault::SlowRead(self.bytes_per_sec.unwrap_or(1 << 20).max(1)),
            "http" => Fault::Http(self.status.unwrap_or(503)),
            "garbage" => Fault::Garbage,
            "label_running" => Fault::LabelRunning,
            "lose_row" => Fault::LoseRow,
            other => return Err(format!("unknown fault `{other}`")),
        };
        Ok(FaultRule { trigger, fault, times: self.times.unwrap_or(1) })
    }
}

/// Takes the faults that fire for this request.
pub fn take(rules: &mut Vec<FaultRule>, request: u64, label: &str) -> Vec<Fault> {
    let mut out = Vec::new();
    for r in rules.iter_mut() {
        let hit = match &r.trigger {
            Trigger::Request(n) => *n == request,
            Trigger::Label(l) => label.contains(l.as_str()),
            Trigger::Any => true,
        };
        if hit && r.times > 0 {
            r.times -= 1;
            out.push(r.fault.clone());
        }
    }
    rules.retain(|r| r.times > 0);
    out
}
