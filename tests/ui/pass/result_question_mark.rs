// `?` and `return` inside functions returning some kind of `Result`.

use std::io;
use std::num::ParseIntError;

#[derive(Debug)]
enum AppError {
    Parse(ParseIntError),
    Io(io::Error),
}

impl From<ParseIntError> for AppError {
    fn from(e: ParseIntError) -> Self {
        AppError::Parse(e)
    }
}

impl From<io::Error> for AppError {
    fn from(e: io::Error) -> Self {
        AppError::Io(e)
    }
}

#[carina::step]
fn parse(s: &str) -> Result<i64, ParseIntError> {
    let n: i64 = s.trim().parse()?;
    Ok(n * 2)
}

/// `?` converts with `From` into the declared error type.
#[carina::step(name = "convert")]
fn convert(s: &str) -> Result<i64, AppError> {
    if s.is_empty() {
        return Err(io::Error::other("empty").into());
    }
    let n = parse(s)?;
    Ok(n)
}

#[carina::step]
fn via_alias(fail: bool) -> io::Result<()> {
    if fail {
        Err(io::Error::other("failed"))?;
    }
    assert_eq!(push_checked(vec![1], (1, 2)).unwrap(), [1, 3]);
    assert!(push_checked(vec![], (255, 1)).is_err());
    Ok(())
}

#[carina::step]
fn boxed(s: &str) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    Ok(s.parse()?)
}

/// `mut` and pattern parameters, used inside the closure that catches `?`.
#[carina::step]
fn push_checked(mut v: Vec<u8>, (a, b): (u8, u8)) -> Result<Vec<u8>, String> {
    v.push(a.checked_add(b).ok_or("overflow")?);
    Ok(v)
}

#[carina::step]
fn main() -> Result<(), AppError> {
    assert_eq!(parse("21")?, 42);
    assert!(parse("x").is_err());
    assert_eq!(convert("2")?, 4);
    assert!(matches!(convert(""), Err(AppError::Io(_))));
    assert!(matches!(convert("?"), Err(AppError::Parse(_))));
    via_alias(false)?;
    assert!(via_alias(true).is_err());
    assert_eq!(boxed("7").unwrap(), 7);
    assert_eq!(push_checked(vec![1], (1, 2)).unwrap(), [1, 3]);
    assert!(push_checked(vec![], (255, 1)).is_err());
    Ok(())
}
