// `items = <expression>`: any numeric expression over the parameters, evaluated once.

use std::cell::Cell;

#[carina::step(items = rows.len())]
fn load(rows: &[String]) -> usize {
    rows.len()
}

#[carina::step(items = { let n = a + b; n * 2 })]
fn block_expr(a: u8, b: u8) -> u16 {
    u16::from(a) + u16::from(b)
}

#[carina::step(items = if big { 1_000_000 } else { 1 }, name = "cond")]
fn conditional(big: bool) -> bool {
    big
}

#[carina::step(items = weight)]
fn float(weight: f64) -> f64 {
    weight
}

#[carina::step(items = calls.replace(calls.get() + 1))]
fn counted(calls: &Cell<u32>) -> u32 {
    calls.get()
}

#[carina::step(items = v.len(), name = "consume")]
fn consume(v: Vec<u8>) -> Vec<u8> {
    v
}

fn main() {
    assert_eq!(load(&["a".into(), "b".into()]), 2);
    assert_eq!(block_expr(1, 2), 3);
    assert!(conditional(true));
    assert_eq!(float(1.5), 1.5);
    let calls = Cell::new(0);
    // The items expression ran exactly once, before the body.
    assert_eq!(counted(&calls), 1);
    assert_eq!(consume(vec![1, 2]), [1, 2]);
}
