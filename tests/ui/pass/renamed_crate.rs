// `crate = path` for a renamed or re-exported `carina`.

extern crate carina as renamed;

mod reexport {
    pub use ::carina as inner;
}

#[renamed::step(crate = renamed)]
fn one() -> u32 {
    1
}

#[renamed::step(crate = renamed, name = "two")]
fn two() -> Result<u32, ()> {
    Ok(2)
}

#[renamed::step(crate = crate::reexport::inner)]
async fn three() -> u32 {
    3
}

#[reexport::inner::step(name = "four", crate = ::renamed, items = 4)]
fn four() -> u32 {
    4
}

fn main() {
    assert_eq!(one() + two().unwrap() + four(), 7);
    let _ = three();
}
