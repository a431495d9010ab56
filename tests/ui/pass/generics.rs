// Generic functions: type, lifetime and const parameters, where clauses, impl Trait.

use std::fmt::Display;

#[carina::step(items = items.len())]
pub(crate) fn largest<'a, T>(items: &'a [T]) -> Option<&'a T>
where
    T: PartialOrd,
{
    let mut best = items.first()?;
    for x in items {
        if x > best {
            best = x;
        }
    }
    Some(best)
}

#[carina::step]
fn parse_all<T, E, F>(inputs: &[&str], f: F) -> Result<Vec<T>, E>
where
    F: Fn(&str) -> Result<T, E>,
{
    let mut out = Vec::new();
    for s in inputs {
        out.push(f(s)?);
    }
    Ok(out)
}

#[carina::step(items = N)]
fn sum_array<const N: usize>(xs: [u32; N]) -> u32 {
    xs.iter().sum()
}

#[carina::step]
fn show(x: impl Display) -> impl Display {
    format!("<{x}>")
}

#[carina::step]
fn evens(limit: u32) -> Result<impl Iterator<Item = u32>, String> {
    if limit == 0 {
        return Err("empty".to_string());
    }
    Ok((0..limit).filter(|x| x % 2 == 0))
}

#[carina::step]
fn first_word<'s>(s: &'s str) -> Result<&'s str, ()> {
    s.split_whitespace().next().ok_or(())
}

struct Wrapper<T>(T);

impl<T: Clone + Default> Wrapper<T> {
    #[carina::step]
    fn take_or_default(&mut self, take: bool) -> Result<T, T> {
        if take {
            Ok(std::mem::take(&mut self.0))
        } else {
            Err(self.0.clone())
        }
    }
}

fn main() {
    assert_eq!(largest(&[1, 5, 2]), Some(&5));
    let parsed: Result<Vec<u8>, _> = parse_all(&["1", "2"], |s| s.parse::<u8>());
    assert_eq!(parsed.unwrap(), [1, 2]);
    assert_eq!(sum_array([1, 2, 3]), 6);
    assert_eq!(show(3).to_string(), "<3>");
    assert_eq!(evens(5).unwrap().count(), 3);
    assert_eq!(first_word("hello world"), Ok("hello"));
    let mut w = Wrapper(String::from("x"));
    assert_eq!(w.take_or_default(false), Err("x".to_string()));
    assert_eq!(w.take_or_default(true), Ok("x".to_string()));
}
