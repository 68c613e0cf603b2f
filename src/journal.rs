//! The job journal: an append-only, fsynced record of each chunk's verdict.
//!
//! One file per job fingerprint under the state directory. Every record is
//! one JSON object on one line; a write torn by `kill -9` leaves a last line
//! without its newline (or not parseable), which is dropped on open. The
//! journal, not only StarRocks' label window, keeps a resumed job from
//! loading a committed chunk twice: StarRocks forgets labels after three days
//! or a thousand transactions.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The first record: what job this journal belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHeader {
    /// Job fingerprint.
    pub fingerprint: String,
    /// `db.table`.
    pub target: String,
    /// Source as given.
    pub source: String,
    /// Number of chunks in the plan.
    pub chunks: usize,
    /// Target schema digest when the journal was created.
    pub schema: String,
    /// The plan's partition digest (see `plan::partition_digest`); absent
    /// in journals of earlier versions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub partitions: String,
    /// Digests of the paths of the files the plan reads (see
    /// [`path_digest`]), so that another job over the same files can tell;
    /// absent in journals of earlier versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The job's where clause, normalized (see `scan::normalized_where`);
    /// empty without one. Recorded with `files`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter: String,
    /// The where clause's canonical form (see `job::canonical_where`),
    /// made from its text as given (`filter` loses the escapes of quotes);
    /// absent in journals of earlier versions and when it does not parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_canonical: Option<String>,
    /// Digests of the Hive partition directories those files lie in, so
    /// that a job reading other files of one of them (a partition rewritten
    /// under new file names) can tell; absent in journals of earlier
    /// versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<String>,
    /// The instant the job's transform reads as `now()` (µs since 1970
    /// UTC), fixed when the job starts so that a resumed run keeps the rows
    /// the first one kept; absent in journals of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<i64>,
}

/// The digest of a source file's path a journal header keeps.
pub fn path_digest(path: &str) -> String {
    blake3::hash(path.as_bytes()).to_hex()[..16].to_string()
}

/// The header of the journal at `path` (its first line), without reading
/// the rest.
pub fn read_header(path: &Path) -> Option<JobHeader> {
    use std::io::BufRead;
    let mut line = Vec::new();
    std::io::BufReader::new(File::open(path).ok()?).read_until(b'\n', &mut line).ok()?;
    match serde_json::from_slice::<Record>(&line).ok()? {
        Record::Job(h) => Some(h),
        _ => None,
    }
}

/// A committed Stream Load: one part (the CSV rows or the JSON rows) of a
/// chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// Chunk index.
    pub index: usize,
    /// Label used.
    pub label: String,
    /// Transaction id, when the server told it.
    pub txn_id: Option<i64>,
    /// Rows sent (None when only the label state proved the commit).
    pub rows: Option<u64>,
    /// Rows the server reported loaded.
    pub loaded: Option<u64>,
    /// Body bytes sent.
    pub bytes: u64,
    /// Wire format (`csv` or `json`).
    pub format: String,
    /// The reply said `Success`: the load was visible when recorded (not
    /// `Publish Timeout`, or a commit learned from the label's state). Only
    /// such a load can witness for a later one ([`Journal::witness`]):
    /// StarRocks queues a load for forgetting once it is visible.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub visible: bool,
}

/// A finished chunk: every part that had rows is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneRecord {
    /// Chunk index.
    pub index: usize,
    /// The chunk's label (its parts' labels add a suffix).
    #[serde(default)]
    pub label: String,
    /// Rows of the chunk (after the transform).
    pub rows: u64,
    /// Body bytes.
    pub bytes: u64,
    /// Labels of its committed parts.
    pub labels: Vec<String>,
}

/// A step of an atomic or overwrite job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ModeRecord {
    /// Overwrite attempt `epoch` loads into these temporary partitions
    /// (`(temporary, live)` names) or this shadow table.
    OverwriteStarted {
        /// Attempt number.
        epoch: u32,
        /// What names the attempt's labels and temporary partitions (or
        /// shadow): the epoch and a random suffix. Absent in journals from
        /// before it: the epoch alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// Temporary partitions and the partitions they replace.
        temps: Vec<(String, String)>,
        /// Shadow table (unpartitioned targets).
        shadow: Option<String>,
    },
    /// The swap of attempt `epoch` is about to be sent. Whether it happened
    /// (its reply may be lost, or the process killed before
    /// `OverwriteSwapped`) is told by these partition ids: the shadow
    /// table's, or the temporary partitions', which a `SWAP WITH` or
    /// `REPLACE PARTITION` makes the live table's.
    OverwriteSwapping {
        /// Attempt number.
        epoch: u32,
        /// `PartitionId`s of what is swapped in.
        ids: Vec<String>,
        /// The shadow table (which holds the old rows after the swap).
        shadow: Option<String>,
    },
    /// The swap of attempt `epoch` happened: the job is done.
    OverwriteSwapped {
        /// Attempt number.
        epoch: u32,
    },
    /// Attempt `epoch` failed and was cleaned up.
    OverwriteAborted {
        /// Attempt number.
        epoch: u32,
        /// Why.
        reason: String,
    },
    /// The atomic transaction needs at least this body kind.
    AtomicFormat {
        /// `csv`, `csv-base64` or `json`.
        part: String,
    },
    /// The commit of the atomic transaction is about to be sent: from here
    /// its rows may be in the table, whatever the journal says next.
    AtomicCommitting {
        /// Label.
        label: String,
        /// The rows the transaction holds (the prepare reply agreed):
        /// what a run that finds the label committed reports. Absent in
        /// journals of earlier versions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<u64>,
    },
    /// The commit of the atomic transaction was sent and the transaction is
    /// known aborted since: its rows are not in the table.
    AtomicAborted {
        /// Label.
        label: String,
    },
    /// The atomic transaction committed.
    AtomicCommitted {
        /// Label.
        label: String,
        /// Rows.
        rows: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    Job(JobHeader),
    Started {
        index: usize,
        label: String,
    },
    Committed(PartRecord),
    /// StarRocks refused (aborted) a started label: its rows are not in
    /// the table.
    Rejected {
        index: usize,
        label: String,
    },
    Done(DoneRecord),
    Mode(ModeRecord),
    /// A label StarRocks committed with other rows than were sent.
    Mismatch {
        index: usize,
        label: String,
        message: String,
    },
}

/// An open journal (exclusively locked).
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    header: JobHeader,
    state: JournalView,
    /// The job's lock (see [`lock_job`]), held as long as the journal.
    job_lock: Option<File>,
}

/// Locks the job whose journals live in `dir`: shared by its shards (which
/// run side by side), exclusive for an unsharded run or `finalize`, so that
/// neither runs beside a shard of the same job.
pub fn lock_job(dir: &Path, fingerprint: &str, shared: bool) -> Result<File> {
    let path = dir.join(format!("{fingerprint}.lock"));
    open_locked(&path, shared, "job lock", || {
        Error::infra(format!(
            "another starload process is running this job ({}; job lock `{}`); re-run when it ends",
            if shared { "unsharded, or its finalize" } else { "a shard, or the whole job" },
            path.display()
        ))
    })
}

/// Opens (creating it, and its directory) the file at `path` and locks it,
/// shared or exclusive, without waiting; `busy` is the error when another
/// process holds the lock.
fn open_locked(path: &Path, shared: bool, what: &str, busy: impl FnOnce() -> Error) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::config(format!("cannot create state directory `{}`: {e}", dir.display())))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::config(format!("cannot open {what} `{}`: {e}", path.display())))?;
    let locked = if shared { file.try_lock_shared() } else { file.try_lock() };
    match locked {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(busy()),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::config(format!("cannot lock {what} `{}`: {e}", path.display())))
        }
    }
}

/// What a journal says.
#[derive(Debug, Clone)]
pub struct JournalView {
    /// The job.
    pub header: JobHeader,
    /// Finished chunks.
    pub done: BTreeMap<usize, DoneRecord>,
    /// Committed parts, by label.
    pub committed: BTreeMap<String, PartRecord>,
    /// Labels started without a verdict, with their chunk index.
    pub started: BTreeMap<String, usize>,
    /// Steps of atomic and overwrite jobs, in order.
    pub modes: Vec<ModeRecord>,
    /// Labels StarRocks committed with other rows than were sent, with the
    /// verification error: a re-run must fail the same way, not count them.
    pub mismatched: BTreeMap<String, String>,
    /// For a label in flight, the label recorded committed last before it
    /// was started (see [`Journal::witness`]).
    pub witnesses: BTreeMap<String, String>,
    /// The label recorded committed last.
    pub last_committed: Option<String>,
}

/// The journal file of a job.
pub fn path_for(state_dir: &Path, fingerprint: &str) -> PathBuf {
    state_dir.join("jobs").join(format!("{fingerprint}.journal"))
}

fn parse(bytes: &[u8], path: &Path) -> Result<(Vec<Record>, usize)> {
    let mut records = Vec::new();
    let mut good = 0usize;
    let mut pos = 0usize;
    while pos < bytes.len() {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            break; // torn tail: no newline
        };
        let line = &bytes[pos..pos + nl];
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => records.push(r),
            Err(e) => {
                if pos + nl + 1 >= bytes.len() {
                    break; // torn last line
                }
                return Err(Error::internal(format!("journal `{}` is corrupt at byte {pos}: {e}", path.display())));
            }
        }
        pos += nl + 1;
        good = pos;
    }
    Ok((records, good))
}

fn fold(records: Vec<Record>, path: &Path) -> Result<JournalView> {
    let mut it = records.into_iter();
    let header = match it.next() {
        Some(Record::Job(h)) => h,
        _ => return Err(Error::internal(format!("journal `{}` has no job header", path.display()))),
    };
    let mut v = JournalView {
        header,
        done: BTreeMap::new(),
        committed: BTreeMap::new(),
        started: BTreeMap::new(),
        modes: Vec::new(),
        mismatched: BTreeMap::new(),
        witnesses: BTreeMap::new(),
        last_committed: None,
    };
    for r in it {
        v.apply(r, path)?;
    }
    Ok(v)
}

impl JournalView {
    fn apply(&mut self, r: Record, path: &Path) -> Result<()> {
        match r {
            Record::Job(_) => {
                return Err(Error::internal(format!("journal `{}` has two job headers", path.display())));
            }
            Record::Started { index, label } => {
                if !self.committed.contains_key(&label) {
                    if let Some(w) = &self.last_committed {
                        self.witnesses.insert(label.clone(), w.clone());
                    }
                    self.started.insert(label, index);
                }
            }
            Record::Rejected { label, .. } => {
                self.started.remove(&label);
                self.witnesses.remove(&label);
            }
            Record::Committed(c) => {
                self.started.remove(&c.label);
                self.witnesses.remove(&c.label);
                if c.visible {
                    self.last_committed = Some(c.label.clone());
                }
                self.committed.insert(c.label.clone(), c);
            }
            Record::Done(d) => {
                // The latest attempt's record wins.
                self.done.insert(d.index, d);
            }
            Record::Mode(m) => self.modes.push(m),
            Record::Mismatch { label, message, .. } => {
                self.started.remove(&label);
                self.witnesses.remove(&label);
                self.mismatched.insert(label, message);
            }
        }
        Ok(())
    }
}

/// Which run of a job a journal file records, told by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum JournalRole {
    /// `<fingerprint>.journal`: a run of the whole job.
    Job,
    /// `<fingerprint>.shard-<i>-of-<n>.journal`: shard `i` of `n`, which
    /// owns the chunks `k` with `k mod n == i`.
    Shard {
        /// The shard.
        index: usize,
        /// Shards in all.
        of: usize,
    },
    /// `<fingerprint>.finalize.journal`: the swap of a sharded overwrite.
    Finalize,
}

impl JournalRole {
    /// The role of the journal named `file_name`, if it is one of starload's.
    pub fn of(file_name: &str) -> Option<JournalRole> {
        let stem = file_name.strip_suffix(".journal")?;
        let Some((_, rest)) = stem.split_once('.') else {
            return Some(JournalRole::Job);
        };
        if rest == "finalize" {
            return Some(JournalRole::Finalize);
        }
        let (i, n) = rest.strip_prefix("shard-")?.split_once("-of-")?;
        let (index, of) = (i.parse().ok()?, n.parse().ok()?);
        (index < of).then_some(JournalRole::Shard { index, of })
    }

    /// How many of a plan's `chunks` this run loads (none for finalize).
    pub fn chunks_owned(&self, chunks: usize) -> usize {
        match *self {
            JournalRole::Job => chunks,
            JournalRole::Shard { index, of } => chunks / of + usize::from(index < chunks % of),
            JournalRole::Finalize => 0,
        }
    }
}

impl JournalView {
    /// Where the job's atomic transaction or overwrite stands, as the last
    /// of its steps says; `None` for an append job.
    pub fn mode_state(&self) -> Option<String> {
        self.modes.iter().rev().find_map(|m| match m {
            ModeRecord::AtomicFormat { .. } => None,
            ModeRecord::OverwriteStarted { epoch, tag, temps, shadow } => {
                let tag = tag.clone().unwrap_or_else(|| epoch.to_string());
                Some(match shadow {
                    Some(t) => format!("overwrite attempt {tag}: loading into the shadow table `{t}`"),
                    None => format!("overwrite attempt {tag}: loading into {} temporary partitions", temps.len()),
                })
            }
            ModeRecord::OverwriteSwapping { epoch, .. } => Some(format!(
                "overwrite attempt {epoch}: swap sent, its outcome not recorded (the next run or finalize finds it out)"
            )),
            ModeRecord::OverwriteSwapped { epoch } => Some(format!("overwrite swapped in (attempt {epoch}): done")),
            ModeRecord::OverwriteAborted { epoch, reason } => Some(format!(
                "overwrite attempt {epoch} aborted, the live table unchanged ({reason}); the next run starts a new attempt"
            )),
            ModeRecord::AtomicCommitting { label, .. } => Some(format!(
                "atomic transaction `{label}`: commit sent, its outcome not recorded (the next run finds it out)"
            )),
            ModeRecord::AtomicAborted { label } => {
                Some(format!("atomic transaction `{label}` aborted after its commit was sent; the next run starts over"))
            }
            ModeRecord::AtomicCommitted { label, rows } => {
                Some(format!("atomic transaction `{label}` committed ({rows} rows): done"))
            }
        })
    }
}

/// Reads a journal without locking it (for `status`).
pub fn read(path: &Path) -> Result<JournalView> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::config(format!("cannot read journal `{}`: {e}", path.display())))?;
    let (records, _) = parse(&bytes, path)?;
    fold(records, path)
}

impl Journal {
    /// The clock the job's transform reads (see [`JobHeader::clock`]).
    pub fn clock(&self) -> Option<i64> {
        self.header.clock
    }

    /// Opens (or creates) the journal at `path` for `header`'s job. Refuses a
    /// journal written for another job, and one locked by another process.
    pub fn open(path: &Path, header: JobHeader) -> Result<Journal> {
        // Retryable when busy: the other run ends (and a re-run resumes it).
        let mut file = open_locked(path, false, "journal", || {
            Error::infra(format!(
                "another starload process is running this job (journal `{}` is locked); re-run when it ends",
                path.display()
            ))
        })?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, good) = parse(&bytes, path)?;
        if good < bytes.len() {
            // Drop a torn tail before appending.
            file.set_len(good as u64)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        let mut j = if records.is_empty() {
            let mut j = Journal {
                file,
                path: path.to_path_buf(),
                header: header.clone(),
                state: JournalView {
                    header: header.clone(),
                    done: BTreeMap::new(),
                    committed: BTreeMap::new(),
                    started: BTreeMap::new(),
                    modes: Vec::new(),
                    mismatched: BTreeMap::new(),
                    witnesses: BTreeMap::new(),
                    last_committed: None,
                },
                job_lock: None,
            };
            j.append(&Record::Job(header.clone()))?;
            j
        } else {
            let view = fold(records, path)?;
            Journal { file, path: path.to_path_buf(), header: view.header.clone(), state: view, job_lock: None }
        };
        if j.header.fingerprint != header.fingerprint || j.header.target != header.target {
            return Err(Error::config(format!(
                "journal `{}` belongs to job {} ({}), not to this job {} ({}); use another state directory or remove it",
                path.display(),
                j.header.fingerprint,
                j.header.target,
                header.fingerprint,
                header.target
            )));
        }
        if !j.header.partitions.is_empty() && j.header.partitions != header.partitions {
            return Err(Error::config(format!(
                "the partition values of this job's files changed since it started (journal `{}`; a partition \
                 renamed in the metastore keeps its files): the chunks already loaded carry the old values. To \
                 load the files again under the new values, use another `label_prefix` and state directory",
                path.display()
            )));
        }
        if j.header.schema != header.schema {
            return Err(Error::config(format!(
                "the schema of `{}` changed since this job started (journal `{}`); the chunks already loaded used the old schema — finish or discard the job deliberately",
                header.target,
                path.display()
            )));
        }
        j.header.chunks = header.chunks;
        Ok(j)
    }

    fn append(&mut self, r: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(r).map_err(|e| Error::internal(e.to_string()))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| Error::infra(format!("cannot write journal `{}`: {e}", self.path.display())))
    }

    /// Records that a label is about to be sent for the first time.
    pub fn started(&mut self, index: usize, label: &str) -> Result<()> {
        if self.state.started.contains_key(label) || self.state.committed.contains_key(label) {
            return Ok(());
        }
        let r = Record::Started { index, label: label.to_string() };
        self.append(&r)?;
        self.state.apply(r, &self.path.clone())
    }

    /// Records a committed part.
    pub fn committed(&mut self, rec: PartRecord) -> Result<()> {
        let r = Record::Committed(rec);
        self.append(&r)?;
        self.state.apply(r, &self.path.clone())
    }

    /// Records a finished chunk.
    pub fn done(&mut self, rec: DoneRecord) -> Result<()> {
        let r = Record::Done(rec);
        self.append(&r)?;
        self.state.apply(r, &self.path.clone())
    }

    /// Records a step of an atomic or overwrite job.
    pub fn mode(&mut self, m: ModeRecord) -> Result<()> {
        let r = Record::Mode(m);
        self.append(&r)?;
        self.state.apply(r, &self.path.clone())
    }

    /// Records that StarRocks refused (aborted) `label`, started earlier:
    /// it holds no rows in the table.
    pub fn rejected(&mut self, index: usize, label: &str) -> Result<()> {
        if !self.state.started.contains_key(label) {
            return Ok(());
        }
        let r = Record::Rejected { index, label: label.to_string() };
        self.append(&r)?;
        self.state.apply(r, &self.path.clone())
    }

    /// Labels started without a verdict, with their chunk index.
    pub fn unsettled(&self) -> Vec<(String, usize)> {
        self.state.started.iter().map(|(l, &i)| (l.clone(), i)).collect()
    }

    /// Records that StarRocks committed `label` with other rows than were
    /// sent (the verification error in `message`).
    pub fn mismatch(&mut self, index: usize, label: &str, message: &str) -> Result<()> {
        let r = Record::Mismatch { index, label: label.to_string(), message: message.to_string() };
        self.append(&r)?;
        self.state.apply(r, &self.path.clone())
    }

    /// The verification error recorded for a label, if any.
    pub fn mismatched(&self, label: &str) -> Option<&str> {
        self.state.mismatched.get(label).map(String::as_str)
    }

    /// The steps recorded so far.
    pub fn modes(&self) -> &[ModeRecord] {
        &self.state.modes
    }

    /// A finished chunk, if any.
    pub fn chunk_done(&self, index: usize) -> Option<&DoneRecord> {
        self.state.done.get(&index)
    }

    /// The chunk with this index and label, if finished (an overwrite
    /// attempt relabels chunks; another attempt's records do not count).
    pub fn chunk_done_as(&self, index: usize, label: &str) -> Option<&DoneRecord> {
        self.state.done.get(&index).filter(|d| d.label == label)
    }

    /// A committed part, by label.
    pub fn part(&self, label: &str) -> Option<&PartRecord> {
        self.state.committed.get(label)
    }

    /// Whether a label was started without a recorded verdict.
    pub fn in_flight(&self, label: &str) -> bool {
        self.state.started.contains_key(label)
    }

    /// For a label in flight, a label of the same job (so of the same
    /// database) that StarRocks had made visible before this one was
    /// started. It finished first, so StarRocks, which forgets the labels of a
    /// database's oldest finished loads first, forgets it no later: while it
    /// still knows it, it would know the label in flight had that committed.
    pub fn witness(&self, label: &str) -> Option<&str> {
        self.state.witnesses.get(label).map(String::as_str)
    }

    /// Keeps the job's lock (from [`lock_job`]) as long as the journal.
    pub fn hold(&mut self, lock: File) {
        self.job_lock = Some(lock);
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journals_name_tells_its_run() {
        assert_eq!(JournalRole::of("0123abcd.journal"), Some(JournalRole::Job));
        assert_eq!(JournalRole::of("0123abcd.finalize.journal"), Some(JournalRole::Finalize));
        assert_eq!(JournalRole::of("0123abcd.shard-2-of-4.journal"), Some(JournalRole::Shard { index: 2, of: 4 }));
        assert_eq!(JournalRole::of("0123abcd.shard-4-of-4.journal"), None);
        assert_eq!(JournalRole::of("0123abcd.shard-x-of-4.journal"), None);
        assert_eq!(JournalRole::of("0123abcd.lock"), None);
        // Chunk k belongs to shard k mod n: 10 chunks in 4 shards are 3, 3, 2, 2.
        let owned: Vec<usize> = (0..4).map(|i| JournalRole::Shard { index: i, of: 4 }.chunks_owned(10)).collect();
        assert_eq!(owned, [3, 3, 2, 2]);
        for n in 1..6 {
            for chunks in 0..20 {
                let by_rule = |i: usize| (0..chunks).filter(|k| k % n == i).count();
                for i in 0..n {
                    assert_eq!(JournalRole::Shard { index: i, of: n }.chunks_owned(chunks), by_rule(i));
                }
            }
        }
    }

    #[test]
    fn the_last_step_tells_where_a_mode_stands() {
        let mut v = JournalView {
            header: header("abc"),
            done: BTreeMap::new(),
            committed: BTreeMap::new(),
            started: BTreeMap::new(),
            modes: vec![],
            mismatched: BTreeMap::new(),
            witnesses: BTreeMap::new(),
            last_committed: None,
        };
        assert_eq!(v.mode_state(), None);
        v.modes.push(ModeRecord::AtomicFormat { part: "csv".into() });
        assert_eq!(v.mode_state(), None);
        v.modes.push(ModeRecord::AtomicCommitting { label: "L".into(), rows: Some(7) });
        assert!(v.mode_state().unwrap().contains("commit sent"));
        v.modes.push(ModeRecord::AtomicFormat { part: "json".into() });
        assert!(v.mode_state().unwrap().contains("commit sent"), "a format step says nothing of the commit");
        v.modes.push(ModeRecord::AtomicCommitted { label: "L".into(), rows: 7 });
        assert!(v.mode_state().unwrap().contains("committed (7 rows)"));
        v.modes = vec![ModeRecord::OverwriteStarted {
            epoch: 1,
            tag: Some("1a2b3c4".into()),
            temps: vec![("t1".into(), "p1".into()), ("t2".into(), "p2".into())],
            shadow: None,
        }];
        assert!(v.mode_state().unwrap().contains("attempt 1a2b3c4: loading into 2 temporary partitions"));
        v.modes.push(ModeRecord::OverwriteAborted { epoch: 1, reason: "boom".into() });
        assert!(v.mode_state().unwrap().contains("aborted"));
        v.modes.push(ModeRecord::OverwriteStarted {
            epoch: 2,
            tag: None,
            temps: vec![],
            shadow: Some("t__stl".into()),
        });
        assert!(v.mode_state().unwrap().contains("attempt 2: loading into the shadow table `t__stl`"));
        v.modes.push(ModeRecord::OverwriteSwapping { epoch: 2, ids: vec!["9".into()], shadow: Some("t__stl".into()) });
        assert!(v.mode_state().unwrap().contains("swap sent"));
        v.modes.push(ModeRecord::OverwriteSwapped { epoch: 2 });
        assert!(v.mode_state().unwrap().contains("swapped in (attempt 2)"));
    }

    fn header(fp: &str) -> JobHeader {
        JobHeader {
            clock: None,
            filter_canonical: None,
            fingerprint: fp.into(),
            target: "db.t".into(),
            source: "/x".into(),
            chunks: 3,
            schema: "s".into(),
            partitions: String::new(),
            files: vec![],
            filter: String::new(),
            dirs: vec![],
        }
    }

    fn rec(i: usize) -> PartRecord {
        PartRecord {
            index: i,
            label: format!("l_{i}"),
            txn_id: Some(1),
            rows: Some(5),
            loaded: Some(5),
            bytes: 10,
            format: "csv".into(),
            visible: true,
        }
    }

    #[test]
    fn shards_share_the_job_lock_and_shut_out_a_whole_run() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (lock_job(d.path(), "fp", true).unwrap(), lock_job(d.path(), "fp", true).unwrap());
        let e = lock_job(d.path(), "fp", false).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Infra, "{e}");
        assert!(e.to_string().contains("another starload process"), "{e}");
        drop((a, b));
        let whole = lock_job(d.path(), "fp", false).unwrap();
        assert!(lock_job(d.path(), "fp", true).is_err());
        assert!(lock_job(d.path(), "other", false).is_ok(), "another job");
        drop(whole);
        lock_job(d.path(), "fp", true).unwrap();
    }

    #[test]
    fn a_label_in_flight_has_the_last_label_committed_before_it_as_witness() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(dir.path(), "abc");
        {
            let mut j = Journal::open(&p, header("abc")).unwrap();
            j.started(0, "l_0").unwrap();
            j.started(1, "l_1").unwrap();
            j.committed(rec(1)).unwrap();
            j.started(2, "l_2").unwrap();
            j.committed(rec(0)).unwrap();
            j.started(3, "l_3").unwrap();
            j.started(4, "l_4").unwrap();
            j.rejected(4, "l_4").unwrap();
            // A commit not yet visible (Publish Timeout) witnesses nothing.
            j.committed(PartRecord { visible: false, ..rec(5) }).unwrap();
            j.started(6, "l_6").unwrap();
            assert_eq!(j.witness("l_2"), Some("l_1"));
        }
        // The same after reading the journal again.
        let j = Journal::open(&p, header("abc")).unwrap();
        assert_eq!(j.witness("l_0"), None, "committed");
        assert_eq!(j.witness("l_1"), None, "committed");
        assert_eq!(j.witness("l_2"), Some("l_1"), "l_0 committed after l_2 started");
        assert_eq!(j.witness("l_3"), Some("l_0"));
        assert_eq!(j.witness("l_4"), None, "rejected");
        assert_eq!(j.witness("l_6"), Some("l_0"), "l_5 was not visible yet");
        assert!(j.in_flight("l_2") && j.in_flight("l_3"));
    }

    #[test]
    fn survives_torn_tail_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(dir.path(), "abc");
        {
            let mut j = Journal::open(&p, header("abc")).unwrap();
            j.started(0, "l_0").unwrap();
            j.committed(rec(0)).unwrap();
            j.done(DoneRecord { index: 0, label: "l_0".into(), rows: 5, bytes: 10, labels: vec!["l_0".into()] })
                .unwrap();
            j.started(1, "l_1").unwrap();
        }
        // Simulate a write torn by kill -9.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"kind":"committed","index":1,"lab"#).unwrap();
        drop(f);
        let mut j = Journal::open(&p, header("abc")).unwrap();
        assert!(j.chunk_done(0).is_some());
        assert!(j.part("l_0").is_some());
        assert!(j.part("l_1").is_none());
        assert!(j.in_flight("l_1"));
        j.committed(rec(1)).unwrap();
        drop(j);
        let v = read(&p).unwrap();
        assert_eq!(v.committed.len(), 2);
        assert_eq!(v.done.len(), 1);
        assert!(v.started.is_empty());
    }

    #[test]
    fn refuses_other_jobs_and_concurrent_runs() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(dir.path(), "abc");
        let j = Journal::open(&p, header("abc")).unwrap();
        let e = Journal::open(&p, header("abc")).unwrap_err();
        assert!(e.to_string().contains("another starload process"), "{e}");
        drop(j);
        let e = Journal::open(&p, header("xyz")).unwrap_err();
        assert!(e.to_string().contains("belongs to job abc"), "{e}");
        let mut h = header("abc");
        h.schema = "changed".into();
        let e = Journal::open(&p, h).unwrap_err();
        assert!(e.to_string().contains("schema"), "{e}");
    }

    /// A journal records the plan's partition digest: a re-run whose files
    /// got other partition values (renamed in the metastore) is refused; a
    /// journal of an earlier version (no digest) is accepted.
    #[test]
    fn refuses_changed_partition_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(dir.path(), "abc");
        let with = |d: &str| JobHeader { partitions: d.into(), ..header("abc") };
        drop(Journal::open(&p, with("d1")).unwrap());
        drop(Journal::open(&p, with("d1")).unwrap());
        let e = Journal::open(&p, with("d2")).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert!(e.to_string().contains("partition values"), "{e}");
        let old = path_for(dir.path(), "old");
        drop(Journal::open(&old, header("old")).unwrap());
        assert!(!std::fs::read_to_string(&old).unwrap().contains("partitions"));
        drop(Journal::open(&old, JobHeader { partitions: "d1".into(), ..header("old") }).unwrap());
    }

    #[test]
    fn corrupt_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(dir.path(), "abc");
        drop(Journal::open(&p, header("abc")).unwrap());
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"garbage\n{\"kind\":\"started\",\"index\":0,\"label\":\"x\"}\n").unwrap();
        drop(f);
        assert!(Journal::open(&p, header("abc")).is_err());
    }
}
