#[carina::step(gpu = true)]
fn forward() {}

fn main() {
    forward();
}
