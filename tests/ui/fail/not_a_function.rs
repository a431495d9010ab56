#[carina::step]
struct Loader {
    rows: usize,
}

#[carina::step(name = "x")]
const LIMIT: usize = 3;

trait Load {
    #[carina::step]
    fn load(&self);
}

#[carina::step]
const fn fixed() -> u32 {
    3
}

fn main() {
    let _ = Loader { rows: LIMIT };
    let _ = fixed();
}
