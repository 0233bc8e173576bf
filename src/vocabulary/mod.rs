//! The words every step of the pipeline shares, and so the ground floor of the crate: paths
//! inside the root, the kinds of node a tree holds, errors, progress and cancellation. Nothing here
//! imports from a higher step.

pub mod background;
pub mod error;
pub mod node;
pub mod path;
pub mod progress;
pub mod quote;
