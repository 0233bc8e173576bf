//! Any bytes as one layer blob (plain, gzip or zstd, sniffed): applied into a sandbox.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "sandbox.rs"]
mod sandbox;

fuzz_target!(|data: &[u8]| {
    let sb = sandbox::Sandbox::new();
    let mut a = flatten::apply::Applier::new(&sb.root(), flatten::Strategy::Auto).unwrap();
    let layer = flatten::error::LayerRef { index: 0, digest: None };
    if a.apply_layer(&layer, Box::new(data), &Default::default(), false).is_ok() {
        let _ = a.finish();
    }
    sb.check();
});
