//! Where the readers get layers: the `Layers` of a stored image (`crate::image`), or
//! `InMemory` blobs a test made itself.

use std::io::Read;

use crate::error::{LayerRef, Result};
use crate::layer::region::Region;
use crate::layer::Expected;

/// The layers of an image, bottom first, as the applier reads them.
pub trait Layers {
    /// How many layers.
    fn count(&self) -> usize;
    /// The stored blob of layer `index` (plain, gzip or zstd).
    fn open(&self, index: usize) -> Result<Box<dyn Read + Send + '_>>;
    /// How errors name layer `index`.
    fn layer_ref(&self, index: usize) -> LayerRef;
    /// The digests layer `index` must have.
    fn expected(&self, index: usize) -> Expected;
    /// The stored size of layer `index`, when known (for progress).
    fn size(&self, _index: usize) -> Option<u64> {
        None
    }
    /// Where the blob of layer `index` lies, if whole in one file here: a plain layer is then
    /// read in place.
    fn region(&self, _index: usize) -> Result<Option<Region>> {
        Ok(None)
    }
    /// Whether the source checks the blob of layer `index` against its digest and size
    /// before its reader ends (a registry's fetcher, which must, to cache it): the reader
    /// then hashes only the uncompressed stream, not the blob a second time.
    fn blob_checked(&self, _index: usize) -> bool {
        false
    }
}
