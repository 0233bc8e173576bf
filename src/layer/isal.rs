//! gzip through the system's ISA-L (feature `isal`): the same stream as
//! `flate2::bufread::MultiGzDecoder` gives, members one after another, each header parsed and
//! each trailer checked (CRC-32 and ISIZE) by ISA-L itself; bytes after a member that do not
//! start another are an error, as they are for flate2.

#![allow(unsafe_code)]

use std::io::{self, BufRead, Read};

#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
mod ffi {
    include!(concat!(env!("OUT_DIR"), "/isal.rs"));
}

/// Which inflater this build uses, as `--version` says.
pub const NAME: &str = "ISA-L (system libisal)";

/// A gzip stream (one member or several) inflated by ISA-L.
pub struct GzDecoder<R> {
    inner: R,
    /// Boxed: about 40 KiB of tables, and ISA-L keeps no pointer into it across calls, but
    /// it must not move while a call runs.
    state: Box<ffi::inflate_state>,
    done: bool,
}

impl<R: BufRead> GzDecoder<R> {
    /// Starts inflating `inner`, which must begin with a gzip header.
    pub fn new(inner: R) -> Self {
        // Safety: inflate_state is plain C data, for which all zeroes is a valid value, and
        // isal_inflate_init sets it up for a new stream.
        let mut state: Box<ffi::inflate_state> = Box::new(unsafe { std::mem::zeroed() });
        unsafe { ffi::isal_inflate_init(&mut *state) };
        state.crc_flag = ffi::ISAL_GZIP;
        GzDecoder {
            inner,
            state,
            done: false,
        }
    }
}

fn error(code: i32) -> io::Error {
    let what = match code {
        ffi::ISAL_INVALID_BLOCK => "invalid deflate block",
        ffi::ISAL_INVALID_SYMBOL => "invalid deflate symbol",
        ffi::ISAL_INVALID_LOOKBACK => "invalid deflate distance",
        ffi::ISAL_INVALID_WRAPPER => "invalid gzip header",
        ffi::ISAL_UNSUPPORTED_METHOD => "unsupported gzip compression method",
        ffi::ISAL_INCORRECT_CHECKSUM => "gzip checksum or size does not match the data",
        c if c == ffi::ISAL_NEED_DICT as i32 => "a deflate stream that needs a dictionary",
        _ => "corrupt gzip stream",
    };
    io::Error::new(io::ErrorKind::InvalidData, format!("{what} (ISA-L {code})"))
}

impl<R: BufRead> Read for GzDecoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let len = out.len().min(u32::MAX as usize);
        let out = &mut out[..len];
        while !self.done {
            let input = self.inner.fill_buf()?;
            let finished = self.state.block_state == ffi::isal_block_state_ISAL_BLOCK_FINISH;
            if finished {
                if input.is_empty() {
                    self.done = true;
                    break;
                }
                // Another member follows (or bytes that must be one).
                unsafe { ffi::isal_inflate_reset(&mut *self.state) };
                self.state.crc_flag = ffi::ISAL_GZIP;
            }
            let input_len = input.len().min(u32::MAX as usize);
            self.state.next_in = input.as_ptr().cast_mut();
            self.state.avail_in = input_len as u32;
            self.state.next_out = out.as_mut_ptr();
            self.state.avail_out = out.len() as u32;
            // Safety: next_in and next_out point into live buffers of the lengths given;
            // ISA-L only reads the one and writes the other, within those lengths, during
            // this call, and keeps no pointer to either afterwards (what it holds back it
            // copies into the state).
            let code = unsafe { ffi::isal_inflate(&mut *self.state) };
            let consumed = input_len - self.state.avail_in as usize;
            let produced = out.len() - self.state.avail_out as usize;
            self.state.next_in = std::ptr::null_mut();
            self.state.next_out = std::ptr::null_mut();
            self.inner.consume(consumed);
            if code < 0 {
                return Err(error(code));
            }
            if produced > 0 {
                return Ok(produced);
            }
            let now_finished = self.state.block_state == ffi::isal_block_state_ISAL_BLOCK_FINISH;
            if input_len == 0 && !now_finished {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the gzip stream ends early",
                ));
            }
        }
        Ok(0)
    }
}

// Safety: the state holds raw pointers only during a call to isal_inflate, made through
// &mut self; between calls they are null. Nothing in it is tied to a thread.
unsafe impl<R: Send> Send for GzDecoder<R> {}
