//! Any bytes as an image archive: reading the archive and its manifests, then applying
//! whatever image it names. Nothing may panic or escape.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "sandbox.rs"]
mod sandbox;

fuzz_target!(|data: &[u8]| {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), data).unwrap();
    let input = flatten::Input::Path(file.path().to_owned());
    let Ok(image) = flatten::Image::open(&input, &Default::default(), true) else {
        return;
    };
    let sb = sandbox::Sandbox::new();
    let _ = flatten::flatten_image(&image, &sb.root(), &Default::default(), &mut ());
    sb.check();
});
