#[carina::step(items = rows)]
fn load(rows: &[u8]) -> usize {
    rows.len()
}

fn main() {
    load(&[]);
}
