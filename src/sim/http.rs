//! FE and BE HTTP endpoints of the simulator.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use super::faults::{self, Fault};
use super::store::{self, BodyFormat, Dest, LoadSpec, Txn, TxnState};
use super::{AuthError, LoadEvent, State};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Fe,
    Be,
}

type Resp = Response<Full<Bytes>>;

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    role: Role,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let me = listener.local_addr().unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move {
                    match role {
                        Role::Fe => {
                            let down =
                                state.fe_down_until.lock().unwrap().is_some_and(|t| std::time::Instant::now() < t);
                            if down {
                                return Err(std::io::Error::other("FE outage"));
                            }
                            Ok::<_, std::io::Error>(fe(state, req).await)
                        }
                        Role::Be => be(state, req, me).await,
                    }
                }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                }
                Some(acceptor) => {
                    // A failed handshake (an untrusted certificate on the
                    // client side) just closes the connection.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            }
        });
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>, content_type: &str) -> Resp {
    Response::builder()
        .status(status)
        .header("Content-Type", content_type)
        .body(Full::new(body.into()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn json_reply(v: serde_json::Value) -> Resp {
    reply(StatusCode::OK, serde_json::to_string_pretty(&v).unwrap_or_default(), "application/json")
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    // As bytes, like the BE (libevent): a `columns` header naming columns
    // outside ASCII is UTF-8 (`HeaderValue::to_str` takes only visible
    // ASCII, and a header it refused was as good as absent). A value that
    // is not UTF-8 is refused where the load is parsed.
    req.headers().get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

fn query_param(req: &Request<Incoming>, key: &str) -> Option<String> {
    req.uri()
        .query()
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned()))
}

fn path_parts(req: &Request<Incoming>) -> Vec<String> {
    req.uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect()
}

pub(crate) fn unauthorized() -> Resp {
    let mut r = reply(
        StatusCode::UNAUTHORIZED,
        serde_json::to_string(
            &json!({"status": "FAILED", "code": "401", "msg": "Unauthorized", "message": "Unauthorized"}),
        )
        .unwrap_or_default(),
        "application/json",
    );
    r.headers_mut().insert("WWW-Authenticate", hyper::header::HeaderValue::from_static("Basic realm=\"\""));
    r
}

fn fe_fail(msg: &str) -> Resp {
    let mut r = json_reply(json!({"Status": "FAILED", "Message": msg}));
    r.headers_mut().insert("Connection", hyper::header::HeaderValue::from_static("close"));
    r
}

async fn fe(state: Arc<State>, req: Request<Incoming>) -> Resp {
    state.fe_requests.fetch_add(1, Ordering::SeqCst);
    let parts = path_parts(&req);
    let p: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
    match (req.method(), p.as_slice()) {
        (&Method::PUT, ["api", db, table, "_stream_load"]) => {
            if let Err(e) = state.check_auth(header(&req, "authorization")) {
                let _ = e;
                return unauthorized();
            }
            if req.version() == hyper::Version::HTTP_11
                && !header(&req, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            {
                return fe_fail("class com.starrocks.common.DdlException: There is no 100-continue header");
            }
            if state.with_db(db, |_| ()).is_none() {
                return fe_fail(&format!("class com.starrocks.common.DdlException: unknown database [{db}]"));
            }
            let _ = table;
            let bes = state.bes.lock().unwrap().clone();
            if bes.is_empty() {
                return fe_fail("No backend alive.");
            }
            let be = bes[state.rr.fetch_add(1, Ordering::SeqCst) % bes.len()];
            let mut loc = format!("{}://{be}{}", state.scheme, req.uri().path());
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
        (_, ["api", _, _, "_stream_load"]) => reply(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed", "text/plain"),
        (&Method::POST | &Method::PUT, ["api", "transaction", op]) => {
            let op = op.to_string();
            super::txn::fe(state.clone(), req, &op).await
        }
        (&Method::GET, ["api", db, "get_load_state"]) => {
            if state.check_auth(header(&req, "authorization")).is_err() {
                return unauthorized();
            }
            let Some(label) = query_param(&req, "label").filter(|l| !l.is_empty()) else {
                return json_reply(
                    json!({"status": "FAILED", "code": "1", "msg": "No label selected", "message": "No label selected"}),
                );
            };
            match state.with_db(db, |d| d.labels.get(&label).map(|t| (t.state, t.reason.clone()))) {
                None => json_reply(
                    json!({"status": "FAILED", "code": "1", "msg": format!("unknown database [{db}]"), "message": format!("unknown database [{db}]")}),
                ),
                Some(s) => {
                    let (st, reason) = s.map(|(s, r)| (s.name(), r)).unwrap_or(("UNKNOWN", String::new()));
                    json_reply(
                        json!({"state": st, "reason": reason, "status": "OK", "code": "0", "msg": "Success", "message": "OK"}),
                    )
                }
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "Not Found", "text/plain"),
    }
}

async fn be(state: Arc<State>, req: Request<Incoming>, me: std::net::SocketAddr) -> Result<Resp, std::io::Error> {
    let parts = path_parts(&req);
    let p: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
    match (req.method().clone(), p.as_slice()) {
        (Method::POST | Method::PUT, ["api", "transaction", op]) => {
            let op = op.to_string();
            super::txn::be(state, req, &op, me).await
        }
        (Method::PUT, ["api", db, table, "_stream_load"]) => {
            let (db, table) = (db.to_string(), table.to_string());
            be_load(state, req, db, table).await
        }
        (Method::GET, ["api", "_load_error_log"]) => {
            let file = query_param(&req, "file").unwrap_or_default();
            let log = state.error_logs.lock().unwrap().get(&file).cloned();
            Ok(match log {
                Some(t) => reply(StatusCode::OK, t, "text/plain"),
                None => reply(StatusCode::NOT_FOUND, "Not Found", "text/plain"),
            })
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "Not Found", "text/plain")),
    }
}

/// The §3.1 reply.
#[derive(Debug, Default)]
struct LoadResult {
    txn_id: i64,
    label: String,
    status: String,
    existing: Option<&'static str>,
    message: String,
    total: u64,
    loaded: u64,
    filtered: u64,
    unselected: u64,
    bytes: u64,
    error_url: Option<String>,
}

impl LoadResult {
    fn fail(label: &str, txn_id: i64, msg: impl Into<String>) -> LoadResult {
        LoadResult { txn_id, label: label.into(), status: "Fail".into(), message: msg.into(), ..Default::default() }
    }
    fn to_resp(&self) -> Resp {
        let mut v = json!({
            "TxnId": self.txn_id,
            "Label": self.label,
            "Status": self.status,
            "Message": self.message,
            "NumberTotalRows": self.total,
            "NumberLoadedRows": self.loaded,
            "NumberFilteredRows": self.filtered,
            "NumberUnselectedRows": self.unselected,
            "LoadBytes": self.bytes,
            "LoadTimeMs": 1,
            "BeginTxnTimeMs": 0,
            "StreamLoadPlanTimeMs": 0,
            "ReadDataTimeMs": 0,
            "WriteDataTimeMs": 0,
            "CommitAndPublishTimeMs": 0
        });
        if let Some(e) = self.existing {
            v["ExistingJobStatus"] = json!(e);
        }
        if let Some(u) = &self.error_url {
            v["ErrorURL"] = json!(u);
        }
        json_reply(v)
    }
}

pub(crate) fn parse_spec_pub(req: &Request<Incoming>) -> Result<LoadSpec, String> {
    parse_spec(req)
}

/// Sets a non-final state.
pub(crate) fn set_state_keep(state: &State, db: &str, label: &str, st: TxnState) {
    state.with_db(db, |d| {
        if let Some(t) = d.labels.get_mut(label) {
            t.state = st;
        }
    });
}

fn parse_spec(req: &Request<Incoming>) -> Result<LoadSpec, String> {
    if let Some((k, _)) = req.headers().iter().find(|(_, v)| std::str::from_utf8(v.as_bytes()).is_err()) {
        return Err(format!("the value of header `{k}` is not UTF-8"));
    }
    let label = match header(req, "label") {
        Some(l) => {
            if l.len() > 128 {
                return Err(format!("Label format error. label {l} is too long"));
            }
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err(format!("Label format error. regex: ^[-\\w]{{1,128}}$, label: {l}"));
            }
            l.to_string()
        }
        None => format!(
            "sim_{:x}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ),
    };
    let fmt = header(req, "format").unwrap_or("csv").to_ascii_lowercase();
    let format = match fmt.as_str() {
        "csv" | "lz4" => BodyFormat::Csv {
            sep: store::parse_delimiter(header(req, "column_separator").unwrap_or("\t"))?,
            delim: store::parse_delimiter(header(req, "row_delimiter").unwrap_or("\n"))?,
        },
        "json" => BodyFormat::Json {
            strip_outer_array: header(req, "strip_outer_array").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        },
        "gzip" | "bzip2" | "deflate" | "zstd" => {
            return Err(format!("compressed format {fmt} is not supported by the simulator"));
        }
        other => return Err(format!("unknown data format, format={other}")),
    };
    if header(req, "jsonpaths").is_some() || header(req, "json_root").is_some() || header(req, "where").is_some() {
        return Err("jsonpaths, json_root and where are not supported by the simulator".into());
    }
    let columns = match header(req, "columns") {
        None => None,
        Some(c) => Some(store::parse_columns(c)?),
    };
    let strict = match header(req, "strict_mode") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err("Invalid strict mode format. Must be bool type".into()),
    };
    let max_filter_ratio = match header(req, "max_filter_ratio") {
        None => 0.0,
        Some(v) => {
            v.trim().parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r)).ok_or("Invalid max_filter_ratio")?
        }
    };
    let timeout = match header(req, "timeout") {
        None => 600,
        Some(v) => {
            let t: u64 = v.trim().parse().map_err(|_| "Invalid timeout format".to_string())?;
            if !(1..=259_200).contains(&t) {
                return Err(format!("timeout {t} is out of range [1, 259200]"));
            }
            t
        }
    };
    let list = |h: &str| header(req, h).map(|v| v.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>());
    let partitions = list("partitions");
    let temporary_partitions = list("temporary_partitions");
    if partitions.is_some() && temporary_partitions.is_some() {
        return Err("Can not specify both partitions and temporary partitions".into());
    }
    let partial_update = match header(req, "partial_update") {
        None => false,
        Some(v) => v.eq_ignore_ascii_case("true"),
    };
    let compression = header(req, "compression").or(header(req, "content-encoding"));
    if let Some(c) = compression {
        return Err(format!("Unsupported compression type: {c} (not supported by the simulator)"));
    }
    Ok(LoadSpec {
        label,
        format,
        columns,
        strict,
        max_filter_ratio,
        timeout,
        partitions,
        temporary_partitions,
        partial_update,
        merge_condition: header(req, "merge_condition").map(str::to_string),
        ignore_json_size: header(req, "ignore_json_size").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        lz4: fmt == "lz4",
    })
}

/// Aborts the transaction of a Stream Load whose handler ends while it is
/// still in PREPARE (the connection dropped before the body ended).
struct CancelOnDrop {
    state: Arc<State>,
    db: String,
    label: String,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let open = self
            .state
            .with_db(&self.db, |d| d.labels.get(&self.label).is_some_and(|t| t.state == TxnState::Prepare))
            .unwrap_or(false);
        if open {
            set_state(&self.state, &self.db, &self.label, TxnState::Aborted, "cancelled: the client went away");
        }
    }
}

pub(crate) fn set_state(state: &State, db: &str, label: &str, st: TxnState, reason: &str) {
    state.with_db(db, |d| {
        if let Some(t) = d.labels.get_mut(label) {
            t.state = st;
            t.reason = reason.to_string();
        }
        if st.is_final() {
            d.finished.push_back(label.to_string());
            while d.finished.len() > state.policy.keep_max {
                if let Some(old) = d.finished.pop_front()
                    && d.labels.get(&old).is_some_and(|t| t.state.is_final())
                {
                    d.labels.remove(&old);
                }
            }
        }
    });
}

async fn be_load(state: Arc<State>, req: Request<Incoming>, db: String, table: String) -> Result<Resp, std::io::Error> {
    let n = state.be_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let label_hdr = header(&req, "label").unwrap_or("").to_string();
    if header(&req, "authorization").is_none() {
        return Ok(LoadResult::fail(&label_hdr, -1, "no valid Basic authorization").to_resp());
    }
    let spec = match parse_spec(&req) {
        Ok(s) => s,
        Err(m) => return Ok(LoadResult::fail(&label_hdr, -1, m).to_resp()),
    };
    let label = spec.label.clone();
    let fired = faults::take(&mut state.faults.lock().unwrap(), n, &label);
    state.faults_fired.fetch_add(fired.len() as u64, Ordering::SeqCst);
    let has = |f: &Fault| fired.iter().any(|x| std::mem::discriminant(x) == std::mem::discriminant(f));
    let delay = fired.iter().find_map(|f| if let Fault::Delay(ms) = f { Some(*ms) } else { None });
    let read_rate = fired.iter().find_map(|f| if let Fault::SlowRead(r) = f { Some(*r) } else { None });
    let fail_msg = fired.iter().find_map(|f| if let Fault::Fail(m) = f { Some(m.clone()) } else { None });
    let http_status = fired.iter().find_map(|f| if let Fault::Http(s) = f { Some(*s) } else { None });
    if let Err(e) = state.check_auth(header(&req, "authorization")) {
        let user = match e {
            AuthError::Denied(u) => u,
            AuthError::Missing => String::new(),
        };
        return Ok(LoadResult::fail(
            &label,
            -1,
            format!("Access denied for user '{user}'@'127.0.0.1' (using password: YES)"),
        )
        .to_resp());
    }
    if has(&Fault::Unreachable) {
        return Err(std::io::Error::other("injected: the request never reached the BE"));
    }
    // Begin the transaction (FE: label check).
    let begin = state.with_db(&db, |d| {
        if !d.tables.contains_key(&table) {
            return Err(format!("unknown table [{table}]"));
        }
        if let Some(t) = d.labels.get(&label)
            && t.state != TxnState::Aborted
        {
            let existing = match t.state {
                TxnState::Prepare | TxnState::Prepared => "RUNNING",
                _ => "FINISHED",
            };
            return Ok(Err(existing));
        }
        Ok(Ok(()))
    });
    match begin {
        None => return Ok(LoadResult::fail(&label, -1, format!("unknown database [{db}]")).to_resp()),
        Some(Err(m)) => return Ok(LoadResult::fail(&label, -1, m).to_resp()),
        Some(Ok(Err(existing))) => {
            let mut r = LoadResult::fail(&label, -1, format!("Label [{label}] has already been used."));
            r.status = "Label Already Exists".into();
            r.existing = Some(existing);
            return Ok(r.to_resp());
        }
        Some(Ok(Ok(()))) => {}
    }
    if has(&Fault::LabelRunning) {
        let mut r = LoadResult::fail(&label, -1, format!("Label [{label}] has already been used."));
        r.status = "Label Already Exists".into();
        r.existing = Some("RUNNING");
        return Ok(r.to_resp());
    }
    let txn_id = state.new_txn_id();
    state.with_db(&db, |d| {
        d.labels.insert(
            label.clone(),
            Txn { id: txn_id, table: table.clone(), state: TxnState::Prepare, reason: String::new() },
        );
    });
    // A client that goes away mid-body drops this handler: the BE cancels
    // the load, and its label is free again.
    let _cancel = CancelOnDrop { state: state.clone(), db: db.clone(), label: label.clone() };
    if has(&Fault::ResetBeforeBody) {
        set_state(&state, &db, &label, TxnState::Aborted, "connection reset");
        return Err(std::io::Error::other("injected reset before body"));
    }
    let format_name = header(&req, "format").unwrap_or("csv").to_string();
    // Read the body.
    let max = state.max_body;
    let one_byte_delim = matches!(spec.format, BodyFormat::Csv { ref delim, .. } if delim.len() == 1);
    // Counted as it arrives (an LZ4 body is counted once it is whole).
    let discard_csv = state.discard && one_byte_delim && !spec.lz4;
    let mut body = req.into_body();
    let read_started = std::time::Instant::now();
    let mut buf: Vec<u8> = Vec::new();
    let mut received = 0u64;
    let mut csv_rows = RowCount::new(match &spec.format {
        BodyFormat::Csv { delim, .. } => delim.first().copied().unwrap_or(b'\n'),
        _ => b'\n',
    });
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                set_state(&state, &db, &label, TxnState::Aborted, "body read error");
                return Err(std::io::Error::other(format!("body read error: {e}")));
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    received += data.len() as u64;
                    if let Some(rate) = read_rate {
                        // Do not read on until the rate allows these bytes.
                        let due = Duration::from_secs_f64(received as f64 / rate as f64);
                        let at = read_started.elapsed();
                        if due > at {
                            tokio::time::sleep(due - at).await;
                        }
                    }
                    if received > max {
                        set_state(&state, &db, &label, TxnState::Aborted, "body too large");
                        return Ok(LoadResult::fail(
                            &label,
                            txn_id,
                            format!("body size {received} exceed limit: {max}, streaming_load_max_mb"),
                        )
                        .to_resp());
                    }
                    if discard_csv {
                        csv_rows.feed(&data);
                    } else {
                        buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
    if let Some(s) = http_status {
        set_state(&state, &db, &label, TxnState::Aborted, "injected HTTP error");
        return Ok(reply(
            StatusCode::from_u16(s).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "<html><body>injected error</body></html>",
            "text/html",
        ));
    }
    if let Some(m) = fail_msg {
        set_state(&state, &db, &label, TxnState::Aborted, &m);
        if let Some(ms) = delay {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        return Ok(LoadResult::fail(&label, txn_id, m).to_resp());
    }
    if spec.lz4 {
        let decoded = if state.discard && one_byte_delim {
            lz4_text(&buf, |piece| csv_rows.feed(piece)).map(|()| Vec::new())
        } else {
            lz4_decompress(&buf)
        };
        match decoded {
            Ok(text) => buf = text,
            Err(m) => {
                set_state(&state, &db, &label, TxnState::Aborted, &m);
                return Ok(LoadResult::fail(&label, txn_id, m).to_resp());
            }
        }
    }
    if has(&Fault::LoseRow)
        && let BodyFormat::Csv { delim, .. } = &spec.format
    {
        // Cut the body after its second-last row delimiter.
        let body = buf.strip_suffix(delim.as_slice()).unwrap_or(&buf);
        let cut = body.windows(delim.len()).rposition(|w| w == delim.as_slice()).map_or(0, |p| p + delim.len());
        buf.truncate(cut);
    }
    // Parse and apply.
    let result = if state.discard {
        let rows = if discard_csv || (spec.lz4 && one_byte_delim) {
            Ok(csv_rows.rows())
        } else {
            store::count_rows(&spec, &buf)
        };
        match rows {
            Ok(rows) => state
                .with_db(&db, |d| {
                    let t = d.tables.get_mut(&table).expect("checked");
                    t.discarded_rows += rows;
                    t.discarded_bytes += received;
                    t.loads += 1;
                })
                .map(|_| (rows, 0u64, None))
                .ok_or_else(|| LoadFailure::from("database vanished".to_string())),
            Err(e) => Err(LoadFailure::from(e)),
        }
    } else {
        process(&state, &db, &table, &spec, &buf)
    };
    let mut r = LoadResult { txn_id, label: label.clone(), bytes: received, ..Default::default() };
    match result {
        Ok((loaded, filtered, error_url)) => {
            r.total = loaded + filtered;
            r.loaded = loaded;
            r.filtered = filtered;
            r.error_url = error_url;
            r.status = if has(&Fault::PublishTimeout) { "Publish Timeout".into() } else { "Success".into() };
            r.message = if has(&Fault::PublishTimeout) {
                "transaction commit successfully, BUT data will be visible later".into()
            } else {
                "OK".into()
            };
            set_state(&state, &db, &label, TxnState::Visible, "");
        }
        Err(LoadFailure { msg, total, filtered, error_url }) => {
            r.status = "Fail".into();
            r.message = msg.clone();
            r.total = total;
            r.filtered = filtered;
            r.loaded = total - filtered;
            r.error_url = error_url;
            set_state(&state, &db, &label, TxnState::Aborted, &msg);
        }
    }
    state.log.lock().unwrap().push(LoadEvent {
        label: label.clone(),
        status: r.status.clone(),
        bytes: received,
        rows: r.loaded,
        format: format_name,
    });
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if has(&Fault::ResetAfterCommit) {
        return Err(std::io::Error::other("injected reset after commit"));
    }
    if has(&Fault::Garbage) {
        return Ok(reply(StatusCode::OK, "{\"Status\": \"Succ", "application/json"));
    }
    Ok(r.to_resp())
}

pub(crate) struct LoadFailure {
    pub(crate) msg: String,
    pub(crate) total: u64,
    pub(crate) filtered: u64,
    pub(crate) error_url: Option<String>,
}

impl From<String> for LoadFailure {
    fn from(msg: String) -> Self {
        LoadFailure { msg, total: 0, filtered: 0, error_url: None }
    }
}

/// Parsed rows of one or more load bodies, routed to partitions, not yet
/// applied.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    pub(crate) rows: Vec<(Vec<crate::value::Value>, u8, Dest)>,
    pub(crate) total: u64,
    pub(crate) filtered: u64,
    pub(crate) unselected: u64,
    pub(crate) errors: Vec<String>,
    pub(crate) given: Vec<bool>,
}

impl Staged {
    pub(crate) fn absorb(&mut self, other: Staged) {
        self.rows.extend(other.rows);
        self.total += other.total;
        self.filtered += other.filtered;
        self.unselected += other.unselected;
        for e in other.errors {
            if self.errors.len() < 50 {
                self.errors.push(e);
            }
        }
        if self.given.is_empty() {
            self.given = other.given;
        }
    }
}

/// Parses a body and routes each row to its (temporary) partition.
pub(crate) fn parse_load(
    state: &State,
    db: &str,
    table: &str,
    spec: &LoadSpec,
    body: &[u8],
) -> Result<Staged, LoadFailure> {
    let (def, temps) = state
        .with_db(db, |d| {
            d.tables.get(table).map(|t| (t.def.clone(), t.temp.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()))
        })
        .flatten()
        .ok_or_else(|| LoadFailure::from(format!("unknown table [{table}]")))?;
    let mut parsed = store::parse_body(&def, spec, body).map_err(LoadFailure::from)?;
    let mut targets: Vec<usize> = Vec::new();
    if let Some(names) = &spec.partitions {
        for n in names {
            let i = def
                .partitions
                .iter()
                .position(|p| p.name.eq_ignore_ascii_case(n))
                .ok_or_else(|| LoadFailure::from(format!("Unknown partition '{n}' in table '{table}'")))?;
            targets.push(i);
        }
    }
    let temp = spec.temporary_partitions.is_some();
    if let Some(names) = &spec.temporary_partitions {
        for n in names {
            let i = temps
                .iter()
                .position(|p| p.name.eq_ignore_ascii_case(n))
                .ok_or_else(|| LoadFailure::from(format!("Unknown temporary partition '{n}' in table '{table}'")))?;
            targets.push(i);
        }
    }
    let temp_def = super::tables::TableDef { partitions: temps, ..def.clone() };
    let mut out = Staged {
        total: parsed.total,
        filtered: parsed.filtered,
        unselected: parsed.unselected,
        errors: std::mem::take(&mut parsed.errors),
        given: parsed.given.clone(),
        ..Default::default()
    };
    for (row, op, _) in std::mem::take(&mut parsed.rows) {
        let dest = if temp {
            temp_def.partition_of(&row).filter(|p| targets.contains(p)).map(Dest::Temp)
        } else {
            def.partition_of(&row).filter(|p| targets.is_empty() || targets.contains(p)).map(Dest::Main)
        };
        match dest {
            Some(d) => out.rows.push((row, op, d)),
            None => {
                out.filtered += 1;
                if out.errors.len() < 50 {
                    out.errors.push("Error: The row is out of partition ranges. Please add a new partition.".into());
                }
            }
        }
    }
    Ok(out)
}

/// Checks the filter ratio and, when it passes, applies the rows atomically:
/// (loaded, filtered, error URL).
pub(crate) fn finish_load(
    state: &State,
    db: &str,
    table: &str,
    spec: &LoadSpec,
    staged: Staged,
    apply: bool,
) -> Result<(u64, u64, Option<String>), LoadFailure> {
    let error_url = if staged.errors.is_empty() {
        None
    } else {
        let name = format!("error_log_{:016x}_{:016x}", state.new_txn_id(), staged.total);
        state.error_logs.lock().unwrap().insert(name.clone(), staged.errors.join("\n"));
        let be = state.bes.lock().unwrap().first().copied();
        be.map(|b| format!("http://{b}/api/_load_error_log?file={name}"))
    };
    let denom = (staged.total - staged.unselected) as f64;
    if staged.filtered > 0 && staged.filtered as f64 > spec.max_filter_ratio * denom {
        return Err(LoadFailure {
            msg: "too many filtered rows".into(),
            total: staged.total,
            filtered: staged.filtered,
            error_url,
        });
    }
    let loaded = staged.rows.len() as u64;
    if apply {
        state.with_db(db, |d| {
            if let Some(t) = d.tables.get_mut(table) {
                store::apply(t, staged.rows, spec, &staged.given);
                t.loads += 1;
            }
        });
    }
    Ok((loaded, staged.filtered, error_url))
}

fn process(
    state: &State,
    db: &str,
    table: &str,
    spec: &LoadSpec,
    body: &[u8],
) -> Result<(u64, u64, Option<String>), LoadFailure> {
    let staged = parse_load(state, db, table, spec, body)?;
    finish_load(state, db, table, spec, staged, true)
}

#[allow(dead_code)]
fn never(_: Infallible) {}

/// The rows a piece of a CSV body ends (discard mode): its delimiters that
/// follow a byte other than the delimiter (`last`: the byte before the
/// piece, `None` at the start of the body); a delimiter after a delimiter
/// ends an empty line, which is no row. One pass comparing the piece with
/// itself shifted by a byte, in fixed-width lanes the compiler turns into
/// vector compares (a row per ~130 bytes made the per-match cost of
/// `memchr_iter` a third of the simulator's CPU in the benchmark; a count
/// pass plus a search for runs was two passes).
fn row_ends(data: &[u8], delim: u8, last: Option<u8>) -> u64 {
    const W: usize = 64;
    let Some(&first) = data.first() else { return 0 };
    let mut n = (first == delim && last.is_some_and(|l| l != delim)) as u64;
    let (cur, prev) = (&data[1..], &data[..data.len() - 1]);
    let full = cur.len() / W * W;
    let (mut c, mut p) = (&cur[..full], &prev[..full]);
    while !c.is_empty() {
        // At most 255 lanes' worth per round: a lane counts in a byte.
        let take = (c.len() / W).min(255) * W;
        let mut lanes = [0u8; W];
        for (cw, pw) in c[..take].chunks_exact(W).zip(p[..take].chunks_exact(W)) {
            let (cw, pw): (&[u8; W], &[u8; W]) = (cw.try_into().expect("W bytes"), pw.try_into().expect("W bytes"));
            for i in 0..W {
                lanes[i] += ((cw[i] == delim) & (pw[i] != delim)) as u8;
            }
        }
        n += lanes.iter().map(|&x| x as u64).sum::<u64>();
        (c, p) = (&c[take..], &p[take..]);
    }
    n + cur[full..].iter().zip(&prev[full..]).filter(|&(&a, &b)| a == delim && b != delim).count() as u64
}

/// Rows of a CSV body counted piece by piece as it arrives (discard mode).
struct RowCount {
    delim: u8,
    /// The last byte fed.
    last: Option<u8>,
    ends: u64,
}

impl RowCount {
    fn new(delim: u8) -> RowCount {
        RowCount { delim, last: None, ends: 0 }
    }

    fn feed(&mut self, piece: &[u8]) {
        self.ends += row_ends(piece, self.delim, self.last);
        self.last = piece.last().copied().or(self.last);
    }

    /// The rows fed: a last row without its delimiter counts too.
    fn rows(&self) -> u64 {
        self.ends + self.last.is_some_and(|l| l != self.delim) as u64
    }
}

/// The whole text of a `format: lz4` body (see [`lz4_text`]).
pub(crate) fn lz4_decompress(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut text = Vec::with_capacity(body.len() * 4);
    lz4_text(body, |piece| text.extend_from_slice(piece)).map(|()| text)
}

/// The text of a `format: lz4` body, a piece at a time. The BE reads the
/// frame header from its first read (at least 15 bytes) and decompresses
/// with LZ4F; here a body shorter than that, a malformed block, a frame
/// without its end mark (a cut body), or bytes after the end mark fail the
/// load. The frame's layout is walked first: lz4_flex's decoder takes input
/// that ends at a block boundary as a complete frame.
pub(crate) fn lz4_text(body: &[u8], mut each: impl FnMut(&[u8])) -> Result<(), String> {
    use std::io::Read;
    if body.len() < 15 {
        return Err(format!("Lz4 header size is between 7 and 15 bytes. but input size is only: {}", body.len()));
    }
    let bad = |why: &str| Err(format!("Decompression error: {why}"));
    if body[..4] != [0x04, 0x22, 0x4d, 0x18] {
        return bad("ERROR_frameType_unknown");
    }
    let flg = body[4];
    let word = |at: usize| body.get(at..at + 4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    let mut at = 7 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 };
    loop {
        let Some(w) = word(at) else { return bad("ERROR_frameSize_wrong (the frame has no end mark)") };
        at += 4;
        if w == 0 {
            break;
        }
        at += (w & 0x7fff_ffff) as usize + if flg & 0x10 != 0 { 4 } else { 0 };
    }
    if flg & 0x04 != 0 {
        at += 4;
    }
    if at > body.len() {
        return bad("ERROR_frameSize_wrong (the frame is cut short)");
    }
    if at < body.len() {
        return bad("data after the end of the LZ4 frame");
    }
    let mut dec = lz4_flex::frame::FrameDecoder::new(body);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match dec.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => each(&buf[..n]),
            Err(e) => return bad(&e.to_string()),
        }
    }
}

#[cfg(test)]
mod lz4_tests {
    use super::lz4_decompress as text;

    fn frame(text: &[u8], info: lz4_flex::frame::FrameInfo) -> Vec<u8> {
        use std::io::Write;
        let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_whole_frame_is_read_and_anything_else_is_refused() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
        let rows: Vec<u8> = (0..60_000).flat_map(|i| format!("{i}\x01v{}\x02", i % 13).into_bytes()).collect();
        let plain = FrameInfo::new().block_size(BlockSize::Max64KB).block_mode(BlockMode::Independent);
        // Checksums and a content size change the layout the walk follows.
        let checked =
            FrameInfo::new().block_checksums(true).content_checksum(true).content_size(Some(rows.len() as u64));
        for info in [plain.clone(), checked] {
            let body = frame(&rows, info);
            assert_eq!(text(&body).unwrap(), rows);
            // Cut anywhere: at a block boundary (the end mark missing), inside a block, inside the header.
            for cut in [body.len() - 4, body.len() - 1, body.len() / 2, 20, 14] {
                assert!(text(&body[..cut]).is_err(), "cut at {cut} of {}", body.len());
            }
            // Bytes after the end mark; a second frame after the first.
            let mut more = body.clone();
            more.push(b'x');
            assert!(text(&more).unwrap_err().contains("after the end"));
            let two = [body.clone(), body.clone()].concat();
            assert!(text(&two).is_err());
            // A block's bytes damaged.
            let mut bad = body.clone();
            let mid = bad.len() / 2;
            bad[mid..mid + 8].copy_from_slice(&[0xff; 8]);
            assert_ne!(text(&bad).ok(), Some(rows.clone()));
        }
        assert!(text(b"1\x012\x02 not lz4 at all").unwrap_err().contains("frameType"));
        assert!(text(&frame(b"", plain.clone())).unwrap_err().contains("between 7 and 15 bytes"));
        assert_eq!(text(&frame(b"a", plain)).unwrap(), b"a");
    }
}

#[cfg(test)]
mod row_end_tests {
    use super::{RowCount, row_ends};

    /// The rule itself, byte by byte.
    fn naive(data: &[u8], d: u8, mut last: Option<u8>) -> u64 {
        let mut n = 0;
        for &b in data {
            if b == d && last.is_some_and(|l| l != d) {
                n += 1;
            }
            last = Some(b);
        }
        n
    }

    #[test]
    fn counts_row_ends_like_the_byte_rule_across_pieces() {
        let d = b'\n';
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..400 {
            // Random bodies over a small alphabet: runs of delimiters,
            // leading and trailing ones; some past a round of lanes
            // (255 × 64 bytes).
            let len: usize = if case % 20 == 0 { 16_000 + case * 7 } else { case % 97 + case / 97 * 61 };
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    [b'a', d, d, b'\x01', b'x'][(seed % 5) as usize]
                })
                .collect();
            for cut in (0..=len.min(9)).chain([len / 2, len.saturating_sub(65)]) {
                let (a, b) = body.split_at(cut);
                let got = row_ends(a, d, None) + row_ends(b, d, a.last().copied());
                assert_eq!(got, naive(&body, d, None), "{body:?} cut at {cut}");
                // Fed in pieces, a last row without its delimiter counts too.
                let mut count = RowCount::new(d);
                count.feed(a);
                count.feed(b);
                let unended = body.last().is_some_and(|&l| l != d) as u64;
                assert_eq!(count.rows(), naive(&body, d, None) + unended, "{body:?} cut at {cut}");
            }
            assert_eq!(row_ends(&body, d, Some(b'z')), naive(&body, d, Some(b'z')), "{body:?}");
            assert_eq!(row_ends(&body, d, Some(d)), naive(&body, d, Some(d)), "{body:?}");
        }
    }
}
