//! With the `isal` feature: bindings to the system's ISA-L inflater (Debian: `libisal-dev`),
//! made from its own header so that they match the library that is linked, whatever its
//! version. Without it, nothing to do.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "isal")]
    isal::bind();
}

#[cfg(feature = "isal")]
mod isal {
    pub fn bind() {
        // pkg-config finds the library and its header where the system put them.
        let lib = pkg_config::Config::new()
            .probe("libisal")
            .unwrap_or_else(|e| {
                panic!("the isal feature needs ISA-L (Debian: apt-get install libisal-dev): {e}")
            });
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("isal.rs");
        bindgen::Builder::default()
            .header_contents("wrapper.h", "#include <isa-l/igzip_lib.h>\n")
            .clang_args(lib.include_paths.iter().map(|p| format!("-I{}", p.display())))
            .allowlist_function("isal_inflate|isal_inflate_init|isal_inflate_reset")
            .allowlist_type("inflate_state")
            .allowlist_var("ISAL_(GZIP|DECOMP_OK|BLOCK_FINISH|INVALID_.*|INCORRECT_CHECKSUM|UNSUPPORTED_METHOD|NEED_DICT|END_INPUT|OUT_OVERFLOW)")
            .layout_tests(false)
            .generate()
            .unwrap_or_else(|e| panic!("cannot make bindings to ISA-L (needs libclang-dev): {e}"))
            .write_to_file(&out)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    }
}
