//! Any bytes as a tar stream, read by `flatten::tar::Archive` alone: every entry, and every
//! entry's content through `data().into_reader()` (sparse holes as zeros). No panic, memory
//! bounded (run with -rss_limit_mb and -malloc_limit_mb), and a content read to its end is
//! exactly the size the header gives.
//!
//! A sparse file's logical size may be anything up to `i64::MAX` while the archive is tiny, so
//! the content read is capped at 64 MiB per input: holes cost time, not memory.
#![no_main]

use std::io::{ErrorKind, Read};

use libfuzzer_sys::fuzz_target;

/// Content read per input, at most.
const CAP: u64 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let mut src = flatten::tar::Stream(data);
    let mut archive = flatten::tar::Archive::new(&mut src);
    let mut budget = CAP;
    let mut buf = vec![0u8; 64 << 10];
    // An error ends the archive: the next call would report it again or stop.
    while let Ok(Some(entry)) = archive.next_entry() {
        let size = entry.header.size;
        let mut content = archive.data().into_reader();
        let mut read = 0u64;
        let complete = loop {
            if read == budget {
                break false;
            }
            let want = buf.len().min((budget - read) as usize);
            match content.read(&mut buf[..want]) {
                Ok(0) => break true,
                Ok(n) => read += n as u64,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break false,
            }
        };
        if complete {
            assert_eq!(
                read, size,
                "the content of {:?} ends after {read} bytes, its header says {size}",
                String::from_utf8_lossy(&entry.header.name)
            );
        }
        budget -= read;
        if budget == 0 {
            break;
        }
    }
});
