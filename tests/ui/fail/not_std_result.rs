// A return type named `Result` is classified as `core::result::Result`; another type of that
// name is reported at the return type.

mod my {
    pub struct Result(pub u32);
}

#[carina::step]
fn load() -> my::Result {
    my::Result(1)
}

fn main() {
    load();
}
