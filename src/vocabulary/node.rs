//! The kinds of node a tree holds, as the merged tree, its outputs and the comparison of
//! trees all name them.

/// What a path is, with what tells two of a kind apart (a file by its size and content
/// digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file.
    File {
        /// Its size in bytes.
        size: u64,
        /// The SHA-256 of its content.
        sha256: [u8; 32],
    },
    /// A directory.
    Dir,
    /// A symbolic link and its target, as stored.
    Symlink(Vec<u8>),
    /// A character device: major, minor.
    CharDevice(u32, u32),
    /// A block device: major, minor.
    BlockDevice(u32, u32),
    /// A named pipe.
    Fifo,
}

impl NodeKind {
    /// What to call it in a message.
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::File { .. } => "file",
            NodeKind::Dir => "directory",
            NodeKind::Symlink(_) => "symlink",
            NodeKind::CharDevice(..) => "character device",
            NodeKind::BlockDevice(..) => "block device",
            NodeKind::Fifo => "fifo",
        }
    }
}
