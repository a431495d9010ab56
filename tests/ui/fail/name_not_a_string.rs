#[carina::step(name = 5)]
fn load() {}

#[carina::step(name = "")]
fn empty() {}

fn main() {
    load();
    empty();
}
