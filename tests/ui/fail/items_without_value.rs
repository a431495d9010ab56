#[carina::step(items)]
fn a(rows: &[u8]) -> usize {
    rows.len()
}

#[carina::step(items =, name = "b")]
fn b(rows: &[u8]) -> usize {
    rows.len()
}

#[carina::step(name = "c", items = )]
fn c(rows: &[u8]) -> usize {
    rows.len()
}

fn main() {
    a(&[]);
    b(&[]);
    c(&[]);
}
