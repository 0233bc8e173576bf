//! Layer blobs a test or fuzzer made itself (feature `testing`).

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Arc;

use super::region::{Region, RegionReader};
use super::{Expected, Layers};
use crate::error::{IoContext, LayerRef, Result};

/// Layer blobs, bottom first, with no digests to check: for tests and tools that make layers
/// themselves. They are kept in an unlinked temporary file so that they are read like the
/// layers of a stored image.
pub struct InMemory {
    file: Arc<File>,
    spans: Vec<(u64, u64)>,
}

impl InMemory {
    /// Keeps `blobs` (plain, gzip or zstd), bottom first.
    pub fn new(blobs: &[Vec<u8>]) -> Result<InMemory> {
        let mut file = tempfile::tempfile().ctx(|| "cannot make a temporary file".into())?;
        let mut spans = Vec::new();
        let mut at = 0u64;
        for b in blobs {
            file.write_all(b)
                .ctx(|| "cannot write a temporary file".into())?;
            spans.push((at, b.len() as u64));
            at += b.len() as u64;
        }
        Ok(InMemory {
            file: Arc::new(file),
            spans,
        })
    }
}

impl Layers for InMemory {
    fn count(&self) -> usize {
        self.spans.len()
    }
    fn open(&self, index: usize) -> Result<Box<dyn Read + Send + '_>> {
        let region = self.region(index)?.expect("always in place");
        Ok(Box::new(RegionReader::new(region)))
    }
    fn layer_ref(&self, index: usize) -> LayerRef {
        LayerRef {
            number: index + 1,
            digest: None,
        }
    }
    fn expected(&self, _index: usize) -> Expected {
        Expected::default()
    }
    fn region(&self, index: usize) -> Result<Option<Region>> {
        let (offset, len) = self.spans[index];
        Ok(Some(Region {
            file: self.file.clone(),
            offset,
            len,
        }))
    }
}
