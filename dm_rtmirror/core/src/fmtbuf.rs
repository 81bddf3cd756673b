//! A fixed-capacity [`core::fmt::Write`] sink over a caller-provided byte
//! buffer.
//!
//! Used by the kernel target to render TABLE/INFO status into the `result`
//! buffer handed to `->status()` and by host tests. Nothing allocates; a
//! write that does not fit fails with [`core::fmt::Error`] and leaves the
//! already-written prefix intact, so the contents are always valid UTF-8.

use core::fmt;

/// A `core::fmt::Write` implementation writing into a `&mut [u8]`.
///
/// Each `write_str` call is all-or-nothing: if the string does not fit in
/// the remaining capacity nothing of it is copied and `fmt::Error` is
/// returned. Because only whole `&str` pieces are ever copied, the written
/// prefix is always valid UTF-8.
#[derive(Debug)]
pub struct FmtBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> FmtBuf<'a> {
    /// Creates an empty writer over `buf`; its capacity is `buf.len()`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        FmtBuf { buf, len: 0 }
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total capacity in bytes (the length of the backing buffer).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes still free in the backing buffer.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so this cannot fail; fall
        // back to "" rather than panicking just in case.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Forgets everything written so far.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Stores a NUL byte right after the written text (not counted in
    /// [`len`](Self::len)), for handing the buffer to C as a string.
    ///
    /// Fails with `fmt::Error` when there is no room for the terminator.
    pub fn terminate(&mut self) -> fmt::Result {
        let slot = self.buf.get_mut(self.len).ok_or(fmt::Error)?;
        *slot = 0;
        Ok(())
    }
}

impl fmt::Write for FmtBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        for (d, b) in dst.iter_mut().zip(s.as_bytes()) {
            *d = *b;
        }
        self.len = end;
        Ok(())
    }
}
