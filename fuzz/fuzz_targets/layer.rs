//! Any bytes as one layer blob (plain, gzip or zstd, sniffed): applied into a sandbox.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "sandbox.rs"]
mod sandbox;

fuzz_target!(|data: &[u8]| {
    let sb = sandbox::Sandbox::new();
    let layers = [data.to_vec()];
    let _ = flatten::output::dir::apply(
        &flatten::output::dir::InMemory::new(&layers).unwrap(),
        &sb.root(),
        &Default::default(),
        &mut (),
    );
    sb.check();
});
