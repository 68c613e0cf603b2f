//! The transaction interface (`/api/transaction/{begin,load,prepare,commit,
//! rollback}`, protocol §1.5, §3.2): FE redirects to the BE that began the
//! transaction; loads are serialized per label and must carry identical
//! headers; data becomes visible only at commit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::State;
use super::http::{LoadFailure, Staged, finish_load, parse_load};
use super::store::{LoadSpec, Txn, TxnState};

type Resp = Response<Full<Bytes>>;

/// A transaction's context on its BE.
#[derive(Debug)]
pub(crate) struct TxnCtx {
    pub(crate) be: SocketAddr,
    pub(crate) table: String,
    pub(crate) txn_id: i64,
    pub(crate) timeout: Duration,
    pub(crate) started: Instant,
    /// Data headers of the first load; later loads must match.
    pub(crate) headers: Option<Vec<(String, String)>>,
    pub(crate) spec: Option<LoadSpec>,
    pub(crate) staged: Staged,
    pub(crate) loads: u64,
    pub(crate) bytes: u64,
    pub(crate) busy: bool,
}

fn json_reply(v: serde_json::Value) -> Resp {
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_string_pretty(&v).unwrap_or_default())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn status(s: &str, msg: impl Into<String>) -> Resp {
    json_reply(json!({"Status": s, "Message": msg.into()}))
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    // As bytes, like the BE (libevent): a `columns` header naming columns
    // outside ASCII is UTF-8 (`HeaderValue::to_str` takes only visible
    // ASCII, and a header it refused was as good as absent). A value that
    // is not UTF-8 is refused where the load is parsed.
    req.headers().get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

fn redirect(scheme: &str, be: SocketAddr, req: &Request<Incoming>) -> Resp {
    let mut loc = format!("{scheme}://{be}{}", req.uri().path());
    if let Some(q) = req.uri().query() {
        loc.push('?');
        loc.push_str(q);
    }
    Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header("Location", loc)
        .header("Connection", "close")
        .header("Content-Length", "0")
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Aborts contexts whose timeout passed (the BE's cleaner thread).
fn expire(state: &State) {
    let mut expired = Vec::new();
    {
        let txns = state.txns.lock().unwrap();
        for ((db, label), c) in txns.iter() {
            if c.started.elapsed() > c.timeout {
                expired.push((db.clone(), label.clone(), c.timeout.as_secs()));
            }
        }
    }
    for (db, label, secs) in expired {
        state.txns.lock().unwrap().remove(&(db.clone(), label.clone()));
        super::http::set_state(
            state,
            &db,
            &label,
            TxnState::Aborted,
            &format!("transaction is aborted by timeout {secs} seconds."),
        );
    }
}

fn label_and_db(req: &Request<Incoming>) -> Result<(String, String), &'static str> {
    let db = header(req, "db").unwrap_or("").trim().to_string();
    let label = header(req, "label").unwrap_or("").trim().to_string();
    if db.is_empty() {
        return Err("No database selected.");
    }
    if label.is_empty() {
        return Err("Empty label.");
    }
    Ok((label, db))
}

/// FE side: redirect to the BE, or answer commit/rollback of a finished or
/// prepared transaction itself.
pub(crate) async fn fe(state: Arc<State>, req: Request<Incoming>, op: &str) -> Resp {
    if state.check_auth(header(&req, "authorization")).is_err() {
        return super::http::unauthorized();
    }
    expire(&state);
    let (label, db) = match label_and_db(&req) {
        Ok(x) => x,
        Err(m) => return status("FAILED", m),
    };
    if state.with_db(&db, |_| ()).is_none() {
        return status("FAILED", format!("unknown database [{db}]"));
    }
    let txn = state.with_db(&db, |d| d.labels.get(&label).cloned()).flatten();
    let ctx_be = state.txns.lock().unwrap().get(&(db.clone(), label.clone())).map(|c| c.be);
    match op {
        "begin" => {
            let bes = state.bes.lock().unwrap().clone();
            if bes.is_empty() {
                return status("FAILED", "No backend alive.");
            }
            let be = bes[state.rr.fetch_add(1, Ordering::SeqCst) % bes.len()];
            state.txn_be.lock().unwrap().insert((db, label), be);
            redirect(state.scheme, be, &req)
        }
        "load" | "prepare" => {
            match ctx_be.or_else(|| state.txn_be.lock().unwrap().get(&(db.clone(), label.clone())).copied()) {
                Some(be) => redirect(state.scheme, be, &req),
                None => status("TXN_NOT_EXISTS", format!("transaction with label {label} not exists")),
            }
        }
        "commit" | "rollback" => {
            let Some(t) = txn else {
                return status("FAILED", format!("No transaction found by label {label}"));
            };
            match (op, t.state) {
                (_, TxnState::Prepare) => match ctx_be {
                    Some(be) => redirect(state.scheme, be, &req),
                    None => status("TXN_NOT_EXISTS", format!("transaction with label {label} not exists")),
                },
                ("commit", TxnState::Prepared) => commit_prepared(&state, &db, &label, t.id),
                ("rollback", TxnState::Prepared) => {
                    state.txns.lock().unwrap().remove(&(db.clone(), label.clone()));
                    super::http::set_state(&state, &db, &label, TxnState::Aborted, "rolled back by user");
                    json_reply(json!({"Status": "OK", "Message": "", "TxnId": t.id, "Label": label}))
                }
                ("commit", TxnState::Committed | TxnState::Visible) => json_reply(json!({
                    "Status": "OK", "TxnId": t.id, "Label": label,
                    "Message": format!("Transaction {} has already committed, label is {label}", t.id)
                })),
                ("rollback", TxnState::Committed | TxnState::Visible) => {
                    status("FAILED", format!("Can not abort COMMITTED transaction {}, label is {label}", t.id))
                }
                ("commit", TxnState::Aborted) => {
                    status("FAILED", format!("Can not commit ABORTED transaction {}, label is {label}", t.id))
                }
                ("rollback", TxnState::Aborted) => json_reply(json!({
                    "Status": "OK", "TxnId": t.id, "Label": label,
                    "Message": format!("Transaction {} has already aborted, label is {label}", t.id)
                })),
                _ => status("FAILED", "unexpected transaction state"),
            }
        }
        _ => status("FAILED", format!("Invalid transaction operation {op}")),
    }
}

fn commit_prepared(state: &State, db: &str, label: &str, txn_id: i64) -> Resp {
    let ctx = state.txns.lock().unwrap().remove(&(db.to_string(), label.to_string()));
    let Some(ctx) = ctx else {
        return status("FAILED", format!("transaction {txn_id} lost its data"));
    };
    let spec = ctx.spec.clone().expect("a prepared transaction had loads");
    match finish_load(state, db, &ctx.table, &spec, ctx.staged, true) {
        Ok(_) => {
            super::http::set_state(state, db, label, TxnState::Visible, "");
            json_reply(json!({"Status": "OK", "Message": "", "TxnId": txn_id, "Label": label}))
        }
        Err(f) => {
            super::http::set_state(state, db, label, TxnState::Aborted, &f.msg);
            status("FAILED", f.msg)
        }
    }
}

/// Data headers that must be identical on every load of a transaction.
fn data_headers(req: &Request<Incoming>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "authorization"
                    | "label"
                    | "db"
                    | "table"
                    | "content-length"
                    | "transfer-encoding"
                    | "expect"
                    | "host"
                    | "connection"
                    | "accept"
                    | "user-agent"
                    | "content-type"
            )
        })
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    v.sort();
    v
}

fn counts(
    label: &str,
    txn_id: i64,
    staged_total: u64,
    filtered: u64,
    unselected: u64,
    loaded: u64,
    bytes: u64,
) -> serde_json::Value {
    json!({
        "Status": "OK", "Message": "", "Label": label, "TxnId": txn_id,
        "NumberTotalRows": staged_total, "NumberLoadedRows": loaded, "NumberFilteredRows": filtered,
        "NumberUnselectedRows": unselected, "LoadBytes": bytes, "LoadTimeMs": 1, "StreamLoadPlanTimeMs": 0,
        "ReceivedDataTimeMs": 0, "WriteDataTimeMs": 0, "CommitAndPublishTimeMs": 0
    })
}

/// BE side of the transaction interface.
pub(crate) async fn be(
    state: Arc<State>,
    req: Request<Incoming>,
    op: &str,
    me: SocketAddr,
) -> Result<Resp, std::io::Error> {
    expire(&state);
    let (label, db) = match label_and_db(&req) {
        Ok(x) => x,
        Err(m) => return Ok(status("FAILED", m)),
    };
    if header(&req, "authorization").is_none() {
        return Ok(status("INTERNAL_ERROR", "no valid Basic authorization"));
    }
    if let Err(e) = state.check_auth(header(&req, "authorization")) {
        let user = match e {
            super::AuthError::Denied(u) => u,
            super::AuthError::Missing => String::new(),
        };
        return Ok(status(
            "INTERNAL_ERROR",
            format!("Access denied for user '{user}'@'127.0.0.1' (using password: YES)"),
        ));
    }
    let key = (db.clone(), label.clone());
    match op {
        "begin" => {
            let table = header(&req, "table").unwrap_or("").to_string();
            let exists = state.with_db(&db, |d| {
                if !d.tables.contains_key(&table) {
                    return Err(format!("unknown table [{table}]"));
                }
                Ok(d.labels.get(&label).filter(|t| t.state != TxnState::Aborted).map(|t| t.state))
            });
            let existing = match exists {
                None => return Ok(status("INTERNAL_ERROR", format!("unknown database [{db}]"))),
                Some(Err(m)) => return Ok(status("INTERNAL_ERROR", m)),
                Some(Ok(e)) => e,
            };
            if let Some(st) = existing {
                let ej = if matches!(st, TxnState::Prepare | TxnState::Prepared) { "RUNNING" } else { "FINISHED" };
                return Ok(json_reply(json!({
                    "Status": "LABEL_ALREADY_EXISTS", "ExistingJobStatus": ej,
                    "Message": format!("Label [{label}] has already been used.")
                })));
            }
            let timeout = match header(&req, "timeout").map(|t| t.trim().parse::<u64>()) {
                None => 600,
                Some(Ok(t)) if (1..=259_200).contains(&t) => t,
                Some(_) => return Ok(status("INVALID_ARGUMENT", "Invalid timeout format")),
            };
            let txn_id = state.new_txn_id();
            state.with_db(&db, |d| {
                d.labels.insert(
                    label.clone(),
                    Txn { id: txn_id, table: table.clone(), state: TxnState::Prepare, reason: String::new() },
                );
            });
            state.txns.lock().unwrap().insert(
                key,
                TxnCtx {
                    be: me,
                    table,
                    txn_id,
                    timeout: Duration::from_secs(timeout),
                    started: Instant::now(),
                    headers: None,
                    spec: None,
                    staged: Staged::default(),
                    loads: 0,
                    bytes: 0,
                    busy: false,
                },
            );
            Ok(json_reply(json!({"Status": "OK", "Message": "", "Label": label, "TxnId": txn_id, "BeginTxnTimeMs": 0})))
        }
        "load" => {
            let n = state.be_requests.fetch_add(1, Ordering::SeqCst) + 1;
            let fired = super::faults::take(&mut state.faults.lock().unwrap(), n, &label);
            state.faults_fired.fetch_add(fired.len() as u64, Ordering::SeqCst);
            for f in &fired {
                match f {
                    super::faults::Fault::ResetBeforeBody => {
                        state.txns.lock().unwrap().remove(&key);
                        super::http::set_state(&state, &db, &label, TxnState::Aborted, "connection reset");
                        return Err(std::io::Error::other("injected reset before body"));
                    }
                    super::faults::Fault::Fail(m) => {
                        state.txns.lock().unwrap().remove(&key);
                        super::http::set_state(&state, &db, &label, TxnState::Aborted, m);
                        return Ok(status("INTERNAL_ERROR", m.clone()));
                    }
                    super::faults::Fault::Delay(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                    _ => {}
                }
            }
            let hdrs = data_headers(&req);
            let spec = {
                let mut txns = state.txns.lock().unwrap();
                let Some(ctx) = txns.get_mut(&key) else {
                    return Ok(status("TXN_NOT_EXISTS", format!("transaction with label {label} not exists")));
                };
                if ctx.busy {
                    return Ok(json_reply(
                        json!({"Status": "TXN_IN_PROCESSING", "Label": label, "Message": "Transaction in processing, please retry later"}),
                    ));
                }
                let st = state.with_db(&db, |d| d.labels.get(&label).map(|t| t.state)).flatten();
                if st != Some(TxnState::Prepare) {
                    return Ok(status("INTERNAL_ERROR", format!("transaction {} is not in PREPARE state", ctx.txn_id)));
                }
                if let Some(h) = &ctx.headers
                    && *h != hdrs
                {
                    return Ok(status("INVALID_ARGUMENT", "load request not equal last."));
                }
                let spec = match super::http::parse_spec_pub(&req) {
                    Ok(s) => s,
                    Err(m) => return Ok(status("INVALID_ARGUMENT", m)),
                };
                ctx.busy = true;
                ctx.headers = Some(hdrs);
                ctx.spec = Some(spec.clone());
                (spec, ctx.table.clone(), ctx.txn_id)
            };
            let (spec, table, txn_id) = spec;
            let mut body = req.into_body();
            let mut buf = Vec::new();
            loop {
                match body.frame().await {
                    None => break,
                    Some(Err(e)) => {
                        // A broken body breaks the transaction.
                        state.txns.lock().unwrap().remove(&key);
                        super::http::set_state(&state, &db, &label, TxnState::Aborted, "body read error");
                        return Err(std::io::Error::other(format!("body read error: {e}")));
                    }
                    Some(Ok(f)) => {
                        if let Ok(d) = f.into_data() {
                            buf.extend_from_slice(&d);
                        }
                    }
                }
            }
            // The BE counts every load's body against `streaming_load_max_mb`
            // for the whole transaction (`TransactionStreamLoadAction::_on_header`).
            let sent_before = state.txns.lock().unwrap().get(&key).map_or(0, |c| c.bytes);
            // The BE feeds a transaction's bodies into one stream (one
            // `StreamLoadPipe`): a CSV body that does not end with the row
            // delimiter would run its last row into the next body's first.
            // Refused here (stricter than StarRocks for the last body).
            let unterminated = |text: &[u8]| match &spec.format {
                super::store::BodyFormat::Csv { delim, .. } => !text.is_empty() && !text.ends_with(delim),
                _ => false,
            };
            let staged = if sent_before + buf.len() as u64 > state.max_body {
                Err(LoadFailure::from(format!(
                    "body size {} exceed limit: {}, streaming_load_max_mb",
                    sent_before + buf.len() as u64,
                    state.max_body
                )))
            } else {
                let text = if spec.lz4 { super::http::lz4_decompress(&buf).map(Some) } else { Ok(None) };
                match text {
                    Err(m) => Err(LoadFailure::from(m)),
                    Ok(text) => {
                        let text: &[u8] = text.as_deref().unwrap_or(&buf);
                        if unterminated(text) {
                            Err(LoadFailure::from(
                                "a transaction's CSV body must end with the row delimiter: StarRocks joins a \
                                 transaction's bodies into one stream, so its last row would run into the next \
                                 body's first"
                                    .to_string(),
                            ))
                        } else {
                            parse_load(&state, &db, &table, &spec, text)
                        }
                    }
                }
            };
            let mut txns = state.txns.lock().unwrap();
            let Some(ctx) = txns.get_mut(&key) else {
                return Ok(status("TXN_NOT_EXISTS", format!("transaction with label {label} not exists")));
            };
            ctx.busy = false;
            match staged {
                Ok(s) => {
                    state.log.lock().unwrap().push(super::LoadEvent {
                        label: label.clone(),
                        status: "OK".into(),
                        bytes: buf.len() as u64,
                        rows: s.rows.len() as u64,
                        format: if spec.lz4 { "lz4" } else { "txn" }.into(),
                    });
                    ctx.staged.absorb(s);
                    ctx.loads += 1;
                    ctx.bytes += buf.len() as u64;
                    Ok(json_reply(json!({
                        "Status": "OK", "Message": "", "Label": label, "TxnId": txn_id, "LoadBytes": buf.len(),
                        "StreamLoadPlanTimeMs": 0, "ReceivedDataTimeMs": 0
                    })))
                }
                Err(LoadFailure { msg, .. }) => {
                    txns.remove(&key);
                    drop(txns);
                    super::http::set_state(&state, &db, &label, TxnState::Aborted, &msg);
                    Ok(status("INTERNAL_ERROR", msg))
                }
            }
        }
        "prepare" | "commit" => {
            let ctx = state.txns.lock().unwrap().remove(&key);
            let Some(ctx) = ctx else {
                return Ok(status("TXN_NOT_EXISTS", format!("transaction with label {label} not exists")));
            };
            if ctx.busy {
                state.txns.lock().unwrap().insert(key, ctx);
                return Ok(json_reply(
                    json!({"Status": "TXN_IN_PROCESSING", "Label": label, "Message": "Transaction in processing, please retry later"}),
                ));
            }
            let st = state.with_db(&db, |d| d.labels.get(&label).map(|t| t.state)).flatten();
            if op == "commit" && st == Some(TxnState::Prepared) {
                let id = ctx.txn_id;
                state.txns.lock().unwrap().insert(key, ctx);
                return Ok(commit_prepared(&state, &db, &label, id));
            }
            if ctx.loads == 0 {
                let id = ctx.txn_id;
                state.txns.lock().unwrap().insert(key, ctx);
                return Ok(status("INTERNAL_ERROR", format!("transaction {id} hasn't send any data yet")));
            }
            let spec = ctx.spec.clone().expect("loads set the spec");
            let (total, filtered, unselected, bytes) =
                (ctx.staged.total, ctx.staged.filtered, ctx.staged.unselected, ctx.bytes);
            if op == "prepare" {
                // Check the ratio without applying; keep the rows for commit.
                let denom = (total - unselected) as f64;
                if filtered > 0 && filtered as f64 > spec.max_filter_ratio * denom {
                    super::http::set_state(&state, &db, &label, TxnState::Aborted, "too many filtered rows");
                    return Ok(status("INTERNAL_ERROR", "too many filtered rows"));
                }
                let loaded = ctx.staged.rows.len() as u64;
                let txn_id = ctx.txn_id;
                state.txns.lock().unwrap().insert(key, ctx);
                super::http::set_state_keep(&state, &db, &label, TxnState::Prepared);
                return Ok(json_reply(counts(&label, txn_id, total, filtered, unselected, loaded, bytes)));
            }
            let txn_id = ctx.txn_id;
            match finish_load(&state, &db, &ctx.table, &spec, ctx.staged, true) {
                Ok((loaded, _, _)) => {
                    super::http::set_state(&state, &db, &label, TxnState::Visible, "");
                    Ok(json_reply(counts(&label, txn_id, total, filtered, unselected, loaded, bytes)))
                }
                Err(f) => {
                    super::http::set_state(&state, &db, &label, TxnState::Aborted, &f.msg);
                    Ok(status("INTERNAL_ERROR", f.msg))
                }
            }
        }
        "rollback" => {
            let ctx = state.txns.lock().unwrap().remove(&key);
            match ctx {
                None => Ok(status("TXN_NOT_EXISTS", format!("transaction with label {label} not exists"))),
                Some(_) => {
                    super::http::set_state(&state, &db, &label, TxnState::Aborted, "rolled back by user");
                    Ok(json_reply(json!({"Status": "OK", "Message": "", "Label": label})))
                }
            }
        }
        _ => Ok(status("INVALID_ARGUMENT", format!("Invalid transaction operation {op}"))),
    }
}
