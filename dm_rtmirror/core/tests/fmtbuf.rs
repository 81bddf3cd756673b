//! Tests for the fixed-size formatting buffer.

use core::fmt::Write;
use rtmirror_core::fmtbuf::FmtBuf;

#[test]
fn writes_and_overflows() {
    let mut buf = [0xffu8; 8];
    let mut fb = FmtBuf::new(&mut buf);
    assert!(fb.is_empty());
    assert_eq!(fb.capacity(), 8);
    write!(fb, "ab{}", 12).unwrap();
    assert_eq!(fb.as_str(), "ab12");
    assert_eq!(fb.len(), 4);
    assert_eq!(fb.remaining(), 4);
    // "é" is two bytes; "xyzé" needs 5 of the 4 remaining: nothing copied.
    assert!(fb.write_str("xyzé").is_err());
    assert_eq!(fb.as_str(), "ab12");
    fb.write_str("wxyz").unwrap();
    assert_eq!(fb.as_bytes(), b"ab12wxyz");
    assert!(fb.terminate().is_err());
    assert!(fb.write_char('!').is_err());
    fb.clear();
    fb.write_str("hi").unwrap();
    fb.terminate().unwrap();
    assert_eq!(fb.as_str(), "hi");
    assert_eq!(&buf[..3], b"hi\0");
}

#[test]
fn zero_capacity() {
    let mut fb = FmtBuf::new(&mut []);
    assert!(fb.write_str("").is_ok());
    assert!(fb.write_str("a").is_err());
    assert!(fb.terminate().is_err());
    assert_eq!(fb.as_str(), "");
}
