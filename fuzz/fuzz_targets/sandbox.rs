//! A target directory with a canary beside it; after each run, the canary and the sandbox's
//! listing must be as they were.

use std::path::PathBuf;

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("canary"), b"canary").unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        Sandbox { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Panics if anything outside the target changed.
    pub fn check(&self) {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["canary", "root"], "something was created beside the target");
        assert_eq!(std::fs::read(self.dir.path().join("canary")).unwrap(), b"canary");
        assert!(std::fs::symlink_metadata(self.root()).unwrap().is_dir());
    }
}

