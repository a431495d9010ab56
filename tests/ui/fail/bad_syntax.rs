#[carina::step(name "a")]
fn a() {}

#[carina::step(name = "b" items = 1)]
fn b() {}

#[carina::step(crate = 5)]
fn c() {}

#[carina::step("d")]
fn d() {}

fn main() {
    a();
    b();
    c();
    d();
}
