// A `Criterion` of another criterion version (0.5 beside carina-criterion's 0.8) is, to
// carina-criterion, a type of another crate: this stand-in shows the error such a user sees first.
struct Criterion;

fn main() {
    let _c = carina_criterion::Energy::new().configure(Criterion);
}
