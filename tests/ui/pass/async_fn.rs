// `async fn`: free functions, methods, `?`, generics, and futures that stay `Send`.

use std::future::Future;

#[carina::step]
async fn plain() {}

#[carina::step(items = n)]
pub async fn double(n: u64) -> u64 {
    n * 2
}

#[carina::step(name = "parse")]
async fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = s.parse()?;
    if n == 0 {
        return Ok(1);
    }
    Ok(n)
}

#[carina::step]
async fn boxed_err(s: String) -> Result<u32, Box<dyn std::error::Error>> {
    Ok(s.parse()?)
}

#[carina::step]
async fn generic<T: Clone + Send>(x: &T) -> Vec<T> {
    vec![x.clone(), x.clone()]
}

#[carina::step]
async fn opaque(n: u32) -> impl std::fmt::Display {
    n + 1
}

struct Db {
    rows: Vec<String>,
}

impl Db {
    #[carina::step(items = self.rows.len())]
    async fn count(&self) -> usize {
        self.rows.len()
    }

    #[carina::step]
    async fn push(&mut self, row: &str) -> Result<&mut Self, String> {
        if row.is_empty() {
            return Err("empty row".into());
        }
        self.rows.push(row.to_string());
        Ok(self)
    }
}

trait Source {
    async fn fetch(&self) -> Result<u8, String>;
}

impl Source for Db {
    #[carina::step]
    async fn fetch(&self) -> Result<u8, String> {
        self.rows
            .len()
            .try_into()
            .map_err(|_| "too many".to_string())
    }
}

fn assert_send<F: Future + Send>(f: F) -> F {
    f
}

fn main() {
    let _ = assert_send(plain());
    let _ = assert_send(double(2));
    let _ = assert_send(parse("1"));
    let _ = assert_send(generic(&1u8));
    let _ = assert_send(opaque(1));
    let mut db = Db { rows: Vec::new() };
    let _ = assert_send(db.count());
    let _ = assert_send(db.push("a"));
    let _ = boxed_err(String::new());
    let _ = db.fetch();
}
