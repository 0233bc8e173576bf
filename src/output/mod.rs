//! The outputs of one reading (`crate::read`): a directory, a tar stream, a listing.

pub mod dir;
pub mod list;
pub mod tar;
