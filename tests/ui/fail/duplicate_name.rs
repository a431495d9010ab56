#[carina::step(name = "a", items = 1, name = "b")]
fn load() {}

fn main() {
    load();
}
