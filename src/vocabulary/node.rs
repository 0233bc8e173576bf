//! The kinds of node a tree holds, as the merged tree, its outputs and the comparison of
//! trees all name them.

/// What a path is, with what tells two of a kind apart (a file by its size and content
/// digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    File { size: u64, sha256: [u8; 32] },
    Dir,
    Symlink(Vec<u8>),
    CharDevice(u32, u32),
    BlockDevice(u32, u32),
    Fifo,
}

impl NodeKind {
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
