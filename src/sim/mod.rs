//! A strict StarRocks simulator: FE and BE Stream Load endpoints, label
//! state, error logs, and a MySQL-protocol endpoint for the metadata and
//! verification statements the loader uses. Every row is parsed with the
//! target column type's rules and stored, so tests assert on what arrived.
//!
//! Run it as `starload sim --tables tables.toml` or in-process with
//! [`Sim::start`]; dropping the [`Sim`] stops it.

mod ddl;
pub mod faults;
mod http;
mod mysql;
pub mod store;
pub mod tables;
mod txn;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::value::Value;
pub use faults::{Fault, FaultRule, Trigger};
use store::{Db, LabelPolicy, Table};
pub use tables::TableDef;

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Tables.
    pub tables: Vec<TableDef>,
    /// Users and passwords.
    pub users: Vec<(String, String)>,
    /// Only count rows and bytes.
    pub discard: bool,
    /// FE HTTP port (0: any).
    pub fe_port: u16,
    /// BE HTTP ports (0: any); one BE per entry.
    pub be_ports: Vec<u16>,
    /// MySQL port (0: any).
    pub mysql_port: u16,
    /// `label_keep_max_num`.
    pub label_keep_max: usize,
    /// `streaming_load_max_mb`.
    pub max_body_mb: u64,
    /// Faults to inject.
    pub faults: Vec<FaultRule>,
    /// Serve FE and BE over HTTPS with this certificate (the redirect then
    /// points at `https://` BEs), as a TLS-terminated cluster does.
    pub tls: Option<TlsFiles>,
    /// The StarRocks version `current_version()` reports.
    pub version: String,
}

/// PEM files of the simulator's HTTPS certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (leaf first).
    pub cert: std::path::PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

fn tls_acceptor(f: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&f.cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::config(format!("simulator certificate `{}`: {e}", f.cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&f.key)
        .map_err(|e| Error::config(format!("simulator key `{}`: {e}", f.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| Error::config(format!("simulator TLS: {e}")))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            tables: Vec::new(),
            users: vec![("root".into(), String::new())],
            discard: false,
            fe_port: 0,
            be_ports: vec![0],
            mysql_port: 0,
            label_keep_max: 1000,
            max_body_mb: 10240,
            faults: Vec::new(),
            tls: None,
            version: SIM_VERSION.into(),
        }
    }
}

/// The StarRocks version the simulator models by default.
pub const SIM_VERSION: &str = "3.3.9-starload-sim";

/// Shared state of the simulator.
pub struct State {
    users: HashMap<String, String>,
    pub(crate) dbs: Mutex<BTreeMap<String, Db>>,
    pub(crate) discard: bool,
    pub(crate) policy: LabelPolicy,
    pub(crate) max_body: u64,
    pub(crate) faults: Mutex<Vec<FaultRule>>,
    pub(crate) be_requests: AtomicU64,
    pub(crate) fe_requests: AtomicU64,
    pub(crate) next_txn: AtomicU64,
    pub(crate) bes: Mutex<Vec<SocketAddr>>,
    pub(crate) rr: AtomicUsize,
    pub(crate) error_logs: Mutex<HashMap<String, String>>,
    pub(crate) log: Mutex<Vec<LoadEvent>>,
    pub(crate) txns: Mutex<HashMap<(String, String), txn::TxnCtx>>,
    pub(crate) txn_be: Mutex<HashMap<(String, String), SocketAddr>>,
    pub(crate) fe_down_until: Mutex<Option<std::time::Instant>>,
    pub(crate) faults_fired: AtomicU64,
    /// Statements (by a case-insensitive substring) the FE carries out and
    /// then drops the connection without a reply, with how many times left.
    pub(crate) lost_replies: Mutex<Vec<(String, u32)>>,
    /// `http` or `https`.
    pub(crate) scheme: &'static str,
    /// `current_version()`.
    pub(crate) version: String,
}

/// One load request the BE saw (for tests).
#[derive(Debug, Clone)]
pub struct LoadEvent {
    /// Label.
    pub label: String,
    /// Reply status.
    pub status: String,
    /// Body bytes received.
    pub bytes: u64,
    /// Rows loaded.
    pub rows: u64,
    /// Format header.
    pub format: String,
}

impl State {
    /// Whether the reply to this (already carried out) statement is lost.
    pub(crate) fn reply_lost(&self, query: &str) -> bool {
        let q = query.to_ascii_uppercase();
        let mut rules = self.lost_replies.lock().unwrap();
        let Some(rule) = rules.iter_mut().find(|(t, n)| *n > 0 && q.contains(t.as_str())) else {
            return false;
        };
        rule.1 -= 1;
        self.faults_fired.fetch_add(1, Ordering::SeqCst);
        true
    }

    pub(crate) fn check_auth(&self, header: Option<&str>) -> std::result::Result<String, AuthError> {
        use base64::Engine;
        let h = header.ok_or(AuthError::Missing)?;
        let token = h.strip_prefix("Basic ").ok_or(AuthError::Missing)?;
        let raw = base64::engine::general_purpose::STANDARD.decode(token.trim()).map_err(|_| AuthError::Missing)?;
        let text = String::from_utf8(raw).map_err(|_| AuthError::Missing)?;
        let (user, pass) = text.split_once(':').ok_or(AuthError::Missing)?;
        match self.users.get(user) {
            Some(p) if p == pass => Ok(user.to_string()),
            _ => Err(AuthError::Denied(user.to_string())),
        }
    }

    pub(crate) fn check_password_scramble(&self, user: &str, salt: &[u8], auth: &[u8]) -> bool {
        match self.users.get(user) {
            None => false,
            Some(p) if p.is_empty() => auth.is_empty(),
            Some(p) => mysql::native_password_matches(p, salt, auth),
        }
    }

    pub(crate) fn with_db<T>(&self, db: &str, f: impl FnOnce(&mut Db) -> T) -> Option<T> {
        let mut dbs = self.dbs.lock().unwrap();
        dbs.get_mut(db).map(f)
    }

    pub(crate) fn new_txn_id(&self) -> i64 {
        self.next_txn.fetch_add(1, Ordering::SeqCst) as i64
    }
}

pub(crate) enum AuthError {
    Missing,
    Denied(String),
}

/// A running simulator. Dropping it stops every server.
pub struct Sim {
    state: Arc<State>,
    /// FE HTTP address.
    pub fe: SocketAddr,
    /// BE HTTP addresses.
    pub bes: Vec<SocketAddr>,
    /// MySQL address.
    pub mysql: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").field("fe", &self.fe).field("bes", &self.bes).field("mysql", &self.mysql).finish()
    }
}

impl Sim {
    /// Starts the servers on 127.0.0.1.
    pub async fn start(cfg: SimConfig) -> Result<Sim> {
        let mut dbs: BTreeMap<String, Db> = BTreeMap::new();
        for t in cfg.tables {
            let db = dbs.entry(t.db.clone()).or_default();
            if db.tables.contains_key(&t.name) {
                return Err(Error::config(format!("table {}.{} declared twice", t.db, t.name)));
            }
            db.tables.insert(t.name.clone(), Table::new(t));
        }
        let state = Arc::new(State {
            users: cfg.users.into_iter().collect(),
            dbs: Mutex::new(dbs),
            discard: cfg.discard,
            policy: LabelPolicy { keep_max: cfg.label_keep_max },
            max_body: cfg.max_body_mb << 20,
            faults: Mutex::new(cfg.faults),
            be_requests: AtomicU64::new(0),
            fe_requests: AtomicU64::new(0),
            next_txn: AtomicU64::new(1000),
            bes: Mutex::new(Vec::new()),
            rr: AtomicUsize::new(0),
            error_logs: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            txns: Mutex::new(HashMap::new()),
            txn_be: Mutex::new(HashMap::new()),
            fe_down_until: Mutex::new(None),
            faults_fired: AtomicU64::new(0),
            lost_replies: Mutex::new(Vec::new()),
            scheme: if cfg.tls.is_some() { "https" } else { "http" },
            version: cfg.version.clone(),
        });
        let tls = cfg.tls.as_ref().map(tls_acceptor).transpose()?;
        let bind = |port: u16| async move {
            TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|e| Error::config(format!("cannot bind 127.0.0.1:{port}: {e}")))
        };
        let mut tasks = Vec::new();
        let mut bes = Vec::new();
        for p in if cfg.be_ports.is_empty() { vec![0] } else { cfg.be_ports } {
            let l = bind(p).await?;
            bes.push(l.local_addr()?);
            tasks.push(tokio::spawn(http::serve(l, state.clone(), http::Role::Be, tls.clone())));
        }
        *state.bes.lock().unwrap() = bes.clone();
        let fe_l = bind(cfg.fe_port).await?;
        let fe = fe_l.local_addr()?;
        tasks.push(tokio::spawn(http::serve(fe_l, state.clone(), http::Role::Fe, tls.clone())));
        let my_l = bind(cfg.mysql_port).await?;
        let mysql = my_l.local_addr()?;
        tasks.push(tokio::spawn(mysql::serve(my_l, state.clone())));
        Ok(Sim { state, fe, bes, mysql, tasks })
    }

    /// `http://127.0.0.1:<fe port>` (`https://` when serving TLS).
    pub fn fe_url(&self) -> String {
        format!("{}://{}", self.state.scheme, self.fe)
    }

    /// `127.0.0.1:<mysql port>`.
    pub fn mysql_addr(&self) -> String {
        self.mysql.to_string()
    }

    /// The visible rows of a table, in storage order.
    pub fn rows(&self, db: &str, table: &str) -> Vec<Vec<Value>> {
        self.state.with_db(db, |d| d.tables.get(table).map(|t| t.rows())).flatten().unwrap_or_default()
    }

    /// Column names of a table.
    pub fn columns(&self, db: &str, table: &str) -> Vec<String> {
        self.state
            .with_db(db, |d| d.tables.get(table).map(|t| t.def.columns.iter().map(|c| c.name.clone()).collect()))
            .flatten()
            .unwrap_or_default()
    }

    /// Row count (discarded rows included).
    pub fn count(&self, db: &str, table: &str) -> u64 {
        self.state.with_db(db, |d| d.tables.get(table).map(|t| t.count())).flatten().unwrap_or(0)
    }

    /// Committed loads into a table.
    pub fn loads(&self, db: &str, table: &str) -> u64 {
        self.state.with_db(db, |d| d.tables.get(table).map(|t| t.loads)).flatten().unwrap_or(0)
    }

    /// Load requests the BEs received.
    pub fn be_requests(&self) -> u64 {
        self.state.be_requests.load(Ordering::SeqCst)
    }

    /// Every load request seen, in order.
    pub fn load_log(&self) -> Vec<LoadEvent> {
        self.state.log.lock().unwrap().clone()
    }

    /// State of a label (`UNKNOWN` when absent).
    pub fn label_state(&self, db: &str, label: &str) -> String {
        self.state
            .with_db(db, |d| d.labels.get(label).map(|t| t.state.name().to_string()))
            .flatten()
            .unwrap_or_else(|| "UNKNOWN".into())
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, rule: FaultRule) {
        self.state.faults.lock().unwrap().push(rule);
    }

    /// The FE drops every connection for `d` (an FE that does not answer).
    pub fn fe_outage(&self, d: std::time::Duration) {
        *self.state.fe_down_until.lock().unwrap() = Some(std::time::Instant::now() + d);
    }

    /// The next `times` MySQL statements containing `text` (any case) are
    /// carried out, then the FE drops the connection instead of replying: the
    /// client cannot tell whether they happened.
    pub fn lose_sql_reply(&self, text: &str, times: u32) {
        self.state.lost_replies.lock().unwrap().push((text.to_ascii_uppercase(), times));
    }

    /// Faults fired so far.
    pub fn faults_fired(&self) -> u64 {
        self.state.faults_fired.load(Ordering::SeqCst)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.faults.lock().unwrap().clear();
    }

    /// Forgets every finished label (as StarRocks does after its window).
    pub fn forget_labels(&self, db: &str) {
        self.state.with_db(db, |d| {
            d.labels.retain(|_, t| !t.state.is_final());
            d.finished.clear();
        });
    }

    /// Waits until every server task ends (for the CLI).
    pub async fn wait(mut self) {
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
