#[carina::step(name = "load", level = "info")]
fn load() {}

fn main() {
    load();
}
