// Methods with every kind of receiver, in inherent and trait impls and trait default bodies.

struct Counter {
    n: u64,
}

impl Counter {
    #[carina::step]
    pub fn new() -> Self {
        Counter { n: 0 }
    }

    #[carina::step(items = by)]
    fn bump(&mut self, by: u64) -> &mut Self {
        self.n += by;
        self
    }

    #[carina::step]
    fn get(&self) -> u64 {
        self.n
    }

    #[carina::step]
    fn slot(&mut self) -> Result<&mut u64, String> {
        Ok(&mut self.n)
    }

    #[carina::step(name = "counter::into_inner")]
    fn into_inner(self) -> u64 {
        self.n
    }

    #[carina::step]
    fn boxed(self: Box<Self>) -> u64 {
        self.n
    }
}

trait Describe {
    fn describe(&self) -> String;

    #[carina::step]
    fn shout(&self) -> String {
        self.describe().to_uppercase()
    }
}

impl Describe for Counter {
    #[carina::step]
    fn describe(&self) -> String {
        format!("counter at {}", self.n)
    }
}

impl std::str::FromStr for Counter {
    type Err = std::num::ParseIntError;

    #[carina::step]
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Counter { n: s.parse()? })
    }
}

fn main() {
    let mut c = Counter::new();
    c.bump(1).bump(2);
    *c.slot().unwrap() += 1;
    assert_eq!(c.get(), 4);
    assert_eq!(c.shout(), "COUNTER AT 4");
    assert_eq!(c.into_inner(), 4);
    assert_eq!(Box::new(Counter { n: 9 }).boxed(), 9);
    assert_eq!("12".parse::<Counter>().unwrap().get(), 12);
}
