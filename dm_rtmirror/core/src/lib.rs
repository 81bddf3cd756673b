//! Pure, allocation-free parsing and formatting for the `rtmirror`
//! device-mapper target: the constructor table line, the STATUSTYPE_INFO
//! line and `dmsetup message` verbs.
//!
//! The module files are also compiled verbatim inside the kernel module
//! (via `#[path = ...]`), so they use only `core` and refer to each other as
//! `crate::<module>`.
#![no_std]
#![warn(missing_docs, rust_2018_idioms)]

pub mod fmtbuf;
pub mod log_format;
pub mod message;
pub mod region;
pub mod status;
pub mod table;
