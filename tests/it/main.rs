//! Integration tests: one binary, modules by capability.

mod arrow_types;
mod bad_input;
mod bitmap;
mod chaos;
mod cli;
mod config;
mod dict;
mod edge_values;
mod exactly_once;
mod fidelity;
mod hms;
mod modes;
mod shards;
mod sources;
mod support;
mod tls;
mod transform;
