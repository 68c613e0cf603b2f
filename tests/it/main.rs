//! Integration tests: one binary, modules by capability.

mod bad_input;
mod exactly_once;
mod fidelity;
mod support;
