//! Caller-owned C buffers and strings, and the fixed-size scratch space the
//! functions use instead of allocating.

use core::ffi::{c_char, c_int, CStr};
use core::fmt::{self, Write as _};

use rtmirror_core::fmtbuf::FmtBuf;

use crate::{RTM_EFAULT, RTM_EINVAL, RTM_EOVERFLOW, RTM_EPROTO};

/// Longest buffer a slice may cover (`from_raw_parts` requires this).
const MAX_BUF_LEN: usize = isize::MAX.unsigned_abs();

/// Most words a table, message or status line is split into. Larger than any
/// valid table (checked by a test against `rtmirror_core`), so a line with
/// more words is invalid whatever they are.
pub(crate) const MAX_WORDS: usize = 32;

/// Counts the bytes a formatter produces.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.checked_add(s.len()).ok_or(fmt::Error)?;
        Ok(())
    }
}

/// A writer that keeps what fits (cut at a character boundary, one byte kept
/// for the NUL) and drops the rest; for error messages, where a cut reason
/// is better than none.
struct Truncating<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl fmt::Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len().saturating_sub(1).saturating_sub(self.len);
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n = n.saturating_sub(1);
        }
        let src = s.as_bytes().get(..n).unwrap_or(&[]);
        let end = self.len.saturating_add(n);
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(src);
            self.len = end;
        }
        // Stop the formatter once the buffer is full.
        if n < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// The caller's optional error-message buffer.
pub(crate) struct ErrBuf<'b> {
    buf: Option<&'b mut [u8]>,
}

impl<'b> ErrBuf<'b> {
    /// Wraps `ptr`/`len` and stores `""` in it. A `NULL` pointer or a zero
    /// length means the caller wants no message.
    ///
    /// # Safety
    ///
    /// `ptr` is `NULL` or points to `len` bytes that are writable and not
    /// accessed otherwise during `'b`.
    pub(crate) unsafe fn new(ptr: *mut c_char, len: usize) -> Self {
        let buf = if ptr.is_null() || len == 0 {
            None
        } else {
            // SAFETY: the caller guarantees `len` writable, unaliased bytes at
            // the non-NULL `ptr`; `c_char` and `u8` have the same layout. A
            // length no object can have is clamped rather than trusted.
            Some(unsafe { core::slice::from_raw_parts_mut(ptr.cast::<u8>(), len.min(MAX_BUF_LEN)) })
        };
        let mut err = ErrBuf { buf };
        err.set(format_args!(""));
        err
    }

    /// Stores `msg`, cut to fit, NUL-terminated.
    pub(crate) fn set(&mut self, msg: impl fmt::Display) {
        let Some(buf) = self.buf.as_deref_mut() else {
            return;
        };
        let mut w = Truncating { buf, len: 0 };
        // A cut message is fine: the error is only the fact that it was cut.
        let _ = write!(w, "{msg}");
        let end = w.len;
        if let Some(nul) = w.buf.get_mut(end) {
            *nul = 0;
        }
    }

    /// Stores `msg` and returns `code`, as `return Err(err.fail(..))`.
    pub(crate) fn fail(&mut self, code: c_int, msg: impl fmt::Display) -> c_int {
        self.set(msg);
        code
    }

    /// The message stored so far (for tests).
    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        let buf = self.buf.as_deref().unwrap_or(&[]);
        let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        core::str::from_utf8(&buf[..len]).unwrap_or("<not utf-8>")
    }
}

/// Stores `value` in `*ptr` unless `ptr` is `NULL` (optional out values).
///
/// # Safety
///
/// `ptr` is `NULL` or valid for a write of `T`.
pub(crate) unsafe fn store<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: non-NULL and valid for writes per the caller; `write` does
        // not read or drop the old (possibly uninitialised) value.
        unsafe { ptr.write(value) }
    }
}

/// The caller's output buffer, holding `""` until something is written:
/// `None` for a size query (`NULL` with length 0), an error for `NULL` with a
/// length or a length no buffer can have.
///
/// # Safety
///
/// `ptr` is `NULL` or points to `len` bytes that are writable and not
/// accessed otherwise during `'b`.
pub(crate) unsafe fn out_buf<'b>(
    ptr: *mut c_char,
    len: usize,
    err: &mut ErrBuf<'_>,
) -> Result<Option<&'b mut [u8]>, c_int> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(None)
        } else {
            Err(err.fail(RTM_EFAULT, "output buffer is NULL but its length is not 0"))
        };
    }
    if len > MAX_BUF_LEN {
        return Err(err.fail(RTM_EINVAL, "output buffer length exceeds PTRDIFF_MAX"));
    }
    // SAFETY: the caller guarantees `len` writable, unaliased bytes at the
    // non-NULL `ptr`, and `len` fits `isize`; `c_char` and `u8` have the same
    // layout.
    let buf = unsafe { core::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) };
    // A caller that ignores the return code finds an empty string.
    if let Some(first) = buf.first_mut() {
        *first = 0;
    }
    Ok(Some(buf))
}

/// A C string argument.
pub(crate) enum CArg<'a> {
    /// The pointer is `NULL`.
    Null,
    /// The string is not UTF-8, so it cannot be a word of the grammar.
    NotUtf8,
    /// The string.
    Str(&'a str),
}

/// Borrows the NUL-terminated string at `ptr`.
///
/// # Safety
///
/// `ptr` is `NULL` or points to a NUL-terminated string that stays valid and
/// unchanged during `'a`.
pub(crate) unsafe fn c_arg<'a>(ptr: *const c_char) -> CArg<'a> {
    if ptr.is_null() {
        return CArg::Null;
    }
    // SAFETY: non-NULL, NUL-terminated and live for `'a` per the caller.
    let s = unsafe { CStr::from_ptr(ptr) };
    match s.to_str() {
        Ok(s) => CArg::Str(s),
        Err(_) => CArg::NotUtf8,
    }
}

/// Writes what `render` produces into `out`, NUL-terminated, and returns the
/// text written.
///
/// `render` runs twice (count, then write), so it must produce the same text
/// each time. When `out` is a size query or too small, returns `Err` with the
/// size needed (NUL included, positive).
pub(crate) fn emit<'b>(
    out: Option<&'b mut [u8]>,
    err: &mut ErrBuf<'_>,
    render: impl Fn(&mut dyn fmt::Write) -> fmt::Result,
) -> Result<&'b str, c_int> {
    let mut count = Counter::default();
    if render(&mut count).is_err() {
        return Err(err.fail(RTM_EPROTO, "internal error: formatting failed"));
    }
    let len = count.0;
    let needed = len.saturating_add(1);
    let out = match out {
        Some(buf) if buf.len() >= needed => buf,
        small => {
            let Ok(code) = c_int::try_from(needed) else {
                return Err(err.fail(
                    RTM_EOVERFLOW,
                    format_args!("output of {len} bytes exceeds INT_MAX"),
                ));
            };
            if small.is_some() {
                err.set(format_args!("buffer too small: {needed} bytes needed"));
            }
            return Err(code);
        }
    };
    let mut w = FmtBuf::new(&mut *out);
    if render(&mut w).is_err() || w.len() != len || w.terminate().is_err() {
        return Err(err.fail(RTM_EPROTO, "internal error: formatting failed"));
    }
    let out: &'b [u8] = out;
    match out.get(..len).map(core::str::from_utf8) {
        Some(Ok(text)) => Ok(text),
        _ => Err(err.fail(RTM_EPROTO, "internal error: formatting failed")),
    }
}

/// Up to [`MAX_WORDS`] words, without allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Words<'a> {
    words: [&'a str; MAX_WORDS],
    len: usize,
}

/// More words than [`MAX_WORDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyWords;

impl<'a> Words<'a> {
    /// No words.
    pub(crate) fn new() -> Self {
        Words {
            words: [""; MAX_WORDS],
            len: 0,
        }
    }

    /// The words of `line`, split at ASCII whitespace as the kernel does.
    pub(crate) fn split(line: &'a str) -> Result<Self, TooManyWords> {
        let mut words = Words::new();
        for w in line.split_ascii_whitespace() {
            words.push(w)?;
        }
        Ok(words)
    }

    /// The first [`MAX_WORDS`] words of `line`, and whether that is all of
    /// them.
    pub(crate) fn split_prefix(line: &'a str) -> (Self, bool) {
        let mut words = Words::new();
        for w in line.split_ascii_whitespace() {
            if words.push(w).is_err() {
                return (words, false);
            }
        }
        (words, true)
    }

    /// Appends `w`.
    pub(crate) fn push(&mut self, w: &'a str) -> Result<(), TooManyWords> {
        let slot = self.words.get_mut(self.len).ok_or(TooManyWords)?;
        *slot = w;
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    /// The words pushed so far.
    pub(crate) fn as_slice(&self) -> &[&'a str] {
        self.words.get(..self.len).unwrap_or(&self.words)
    }

    /// Number of words.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether `line` is exactly these words joined by single spaces.
    pub(crate) fn joined_eq(&self, line: &str) -> bool {
        let mut rest = line;
        for (i, w) in self.as_slice().iter().enumerate() {
            if i > 0 {
                match rest.strip_prefix(' ') {
                    Some(r) => rest = r,
                    None => return false,
                }
            }
            match rest.strip_prefix(w) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

/// Bump allocation of short strings (numbers, the uuid) from a stack buffer,
/// so that they can be words next to the caller's strings.
pub(crate) struct Arena<'a> {
    free: &'a mut [u8],
}

impl<'a> Arena<'a> {
    /// Hands out the bytes of `buf`.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Arena { free: buf }
    }

    /// Formats `args` into the arena; `None` when it does not fit.
    pub(crate) fn text(&mut self, args: fmt::Arguments<'_>) -> Option<&'a str> {
        let mut count = Counter::default();
        count.write_fmt(args).ok()?;
        // Once a string does not fit the arena stays empty: that is a bug
        // (the callers size it for their worst case), and it fails cleanly.
        let (head, tail) = core::mem::take(&mut self.free).split_at_mut_checked(count.0)?;
        self.free = tail;
        let mut w = FmtBuf::new(&mut *head);
        w.write_fmt(args).ok()?;
        let head: &'a [u8] = head;
        core::str::from_utf8(head).ok()
    }
}

/// Lowercase hex digits of some bytes.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}
