//! Where a merged tree goes when it is not a directory.

pub mod tar;
