//! starload: load Hive/Parquet datasets into StarRocks through chunked,
//! labelled, exactly-once Stream Loads.
//!
//! The pipeline: [`source`] lists files (local, S3, HDFS) with Hive
//! partitions; [`plan`] reads footers and cuts deterministic chunks with
//! stable labels; [`scan`] reads a chunk's row groups with DataFusion and
//! applies the SQL transform; [`encode`] renders Arrow batches as StarRocks
//! CSV (or JSON) on rayon; [`load`] drives the Stream Loads with retries,
//! label-state resolution and the [`journal`]; [`meta`] reads the target
//! schema over the MySQL protocol. [`sim`] is a strict StarRocks simulator
//! used by the tests, the demo and the benchmarks.

pub mod bufpool;
pub mod client;
pub mod compress;
pub mod encode;
pub mod error;
pub mod hms;
pub mod journal;
pub mod limit;
pub mod meta;
pub mod metrics;
mod modes;
pub mod plan;
pub mod preagg;
pub mod prune;
pub mod scan;
pub mod source;
pub mod srtype;
#[cfg(test)]
mod test_rng;
pub mod value;

pub use error::{Error, ErrorKind, Result};
pub mod bitmap;
pub mod config;
pub mod demo;
pub mod dict;
pub mod dictjob;
pub mod job;
pub mod load;
pub mod sim;
