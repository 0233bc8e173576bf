//! Reading tar archives, in every form that real tools write into image layers: V7, ustar,
//! GNU (long names and links, base-256 numbers, old sparse files) and PAX (extended and
//! global headers whose values may hold any byte, GNU sparse formats 0.0, 0.1 and 1.0).
//!
//! Our own reader, not the `tar` crate's: that one splits PAX records on newlines (so a
//! binary xattr value stops every run) and reads PAX sparse files as a directory of raw
//! pieces. Everything else in the crate reads tar through [`Archive`], so a rule fixed here
//! holds in every command. `docs/formats.md` lists what is accepted and what is refused.
//!
//! - [`block`]: one 512-byte header block: checksum, numbers, names;
//! - [`pax`]: extended header records and how they combine;
//! - [`sparse`]: sparse maps, checked, and the reader that fills the holes;
//! - [`read`](Archive): the entries of a stream, one at a time, with their content;
//! - [`model`](Header): the entry as the rest of the crate sees it.

pub mod block;
mod model;
pub mod pax;
mod read;
pub mod sparse;

pub use model::{Header, Kind, Meta, Timestamp};
pub use read::{for_each, Archive, Data, Entry, Source, Stream, MAX_EXTENDED};
pub use sparse::SparseMap;
