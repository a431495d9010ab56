// `unsafe fn`, with and without a `Result`, plus `extern "C"`, attributes and doc comments.

#![deny(unsafe_op_in_unsafe_fn, unused_unsafe)]

/// Reads through a raw pointer.
///
/// # Safety
/// `p` must be valid for reads.
#[carina::step]
#[inline]
#[must_use]
pub unsafe fn read(p: *const u32) -> u32 {
    unsafe { *p }
}

/// # Safety
/// `p` must be null or valid for reads.
#[carina::step(name = "read_checked")]
unsafe fn read_checked(p: *const u32) -> Result<u32, &'static str> {
    if p.is_null() {
        return Err("null");
    }
    Ok(unsafe { *p })
}

/// # Safety
/// `p` must be valid for reads.
#[allow(unsafe_op_in_unsafe_fn)]
#[carina::step]
unsafe fn read_old_style(p: *const u32) -> std::io::Result<u32> {
    Ok(*p)
}

#[carina::step]
extern "C" fn callback(x: i32) -> i32 {
    #![allow(clippy::let_and_return)]
    let y = x + 1;
    y
}

fn main() {
    let x = 3;
    unsafe {
        assert_eq!(read(&x), 3);
        assert_eq!(read_checked(&x), Ok(3));
        assert_eq!(read_checked(std::ptr::null()), Err("null"));
        assert_eq!(read_old_style(&x).unwrap(), 3);
    }
    assert_eq!(callback(1), 2);
}
