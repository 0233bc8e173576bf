//! Structured: the bytes choose entries (types, names from a hostile vocabulary, link
//! targets, whiteouts) for up to three layers, written as real tars. The real applier runs
//! in a sandbox; when it and the executable specification both accept the stack, their
//! trees must be equal.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "sandbox.rs"]
mod sandbox;
#[path = "../../tests/common/tarw.rs"]
mod tarw;

use tarw::E;

const NAMES: &[&str] = &["a", "b", "a/b", "a/b/c", "b/a", "/a", "./b", "c", "a/.wh.b", ".wh.a", "a/.wh..wh..opq", ".wh..wh..opq", "..", "a/..", ".", "/", ".wh..wh.plnk/x"];
const TARGETS: &[&str] = &["a", "/a", "..", "../..", "/", "a/b", "../a/b", "/../../a", "b/../../c", "c", ".", ""];

fn entries(data: &[u8]) -> Vec<Vec<E>> {
    let mut layers = vec![Vec::new()];
    for chunk in data.chunks(3) {
        let [op, n, t] = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let name = NAMES[n as usize % NAMES.len()];
        let target = TARGETS[t as usize % TARGETS.len()];
        let e = match op % 8 {
            0 => E::file(name, &[t]).mode(0o644 | u32::from(t & 0o7)),
            1 => E::dir(name).mode(0o755 ^ u32::from(t & 0o77)),
            2 => E::symlink(name, target),
            3 => E::hardlink(name, &NAMES[t as usize % NAMES.len()].to_owned()),
            4 => E::fifo(name),
            5 => E::whiteout(&format!("{}.wh.{}", if t % 2 == 0 { "" } else { "a/" }, NAMES[t as usize % 3])),
            6 => E::file(name, b"").xattr("user.x", &[t]),
            _ => {
                if layers.len() < 3 {
                    layers.push(Vec::new());
                }
                continue;
            }
        };
        layers.last_mut().unwrap().push(e);
    }
    layers
}

fuzz_target!(|data: &[u8]| {
    let layers: Vec<Vec<u8>> = entries(data).iter().map(|l| tarw::tar(l)).collect();
    let sb = sandbox::Sandbox::new();
    let ok = flatten::output::dir::apply(
        &flatten::output::dir::InMemory::new(&layers).unwrap(),
        &sb.root(),
        &Default::default(),
        &mut (),
    )
    .is_ok();
    sb.check();
    let mut spec = flatten::spec::Spec::new();
    let spec_ok = layers.iter().all(|l| spec.apply_layer(&l[..]).is_ok());
    assert_eq!(ok, spec_ok, "the applier and the spec disagree on accepting the stack");
    if ok {
        let real = flatten::snapshot::Snapshot::from_dir(&sb.root()).unwrap();
        let d = real.diff(&spec.snapshot(), flatten::snapshot::Mtime::Exact);
        assert!(d.is_empty(), "applier and spec differ:\n{}", d.join("\n"));
    }
});
