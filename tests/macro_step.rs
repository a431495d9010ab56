//! What `#[carina::step]` records, checked against a real run with a memory sink.
//!
//! Only one run may be installed per process, so every run-using check is in the one test
//! function `recorded_steps`, and the tests hold `SERIAL` (a call made by another test while the
//! run is installed would be recorded too).

use carina::record::{StepRecord, StepStatus};
use carina::sink::MemorySink;
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

// ---- functions under test --------------------------------------------------------------------

#[carina::step]
fn default_name() -> u32 {
    7
}

#[carina::step(name = "custom")]
fn custom_name() {}

#[carina::step]
fn r#loop() {}

/// A GPU step with a `Result`, and an async one.
#[carina::step(name = "train_step", gpu, items = 2)]
fn train_step(ok: bool) -> Result<u32, String> {
    if ok { Ok(1) } else { Err("nan loss".into()) }
}

#[carina::step(gpu)]
async fn async_gpu(x: u64) -> u64 {
    x + 1
}

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// `items` reads the counter before the body bumps it.
#[carina::step(items = COUNTER.get())]
fn items_before_body(by: u64) -> u64 {
    COUNTER.set(COUNTER.get() + by);
    COUNTER.get()
}

#[carina::step(items = xs.len())]
fn sum(xs: &[u32]) -> u32 {
    xs.iter().sum()
}

#[carina::step]
fn fallible(fail: bool) -> Result<u32, String> {
    let n: u32 = "41".parse().map_err(|_| "not a number".to_string())?;
    if fail {
        return Err("asked to".into());
    }
    Ok(n + 1)
}

#[carina::step]
fn io_fallible(fail: bool) -> std::io::Result<()> {
    if fail {
        Err(std::io::Error::other("nope"))?;
    }
    Ok(())
}

#[carina::step]
fn early_return(x: u32) -> u32 {
    if x > 10 {
        return 10;
    }
    x
}

struct Acc {
    total: u64,
}

impl Acc {
    #[carina::step(items = n)]
    fn add(&mut self, n: u64) -> &mut Self {
        self.total += n;
        self
    }

    #[carina::step]
    fn total(&self) -> u64 {
        self.total
    }

    #[carina::step(name = "acc::field")]
    fn field(&mut self, ok: bool) -> Result<&mut u64, String> {
        if !ok {
            return Err("no".into());
        }
        Ok(&mut self.total)
    }

    #[carina::step]
    fn into_total(self) -> u64 {
        self.total
    }
}

trait Shape {
    fn area(&self) -> f64;
}

struct Square(f64);

impl Shape for Square {
    #[carina::step(name = "square::area")]
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

#[carina::step(items = items.len())]
fn largest<'a, T>(items: &'a [T]) -> Option<&'a T>
where
    T: PartialOrd,
{
    items.iter().fold(None, |best, x| match best {
        Some(b) if b >= x => Some(b),
        _ => Some(x),
    })
}

/// # Safety
/// `p` must be valid for reads.
#[carina::step]
unsafe fn read(p: *const u64) -> u64 {
    unsafe { *p }
}

/// # Safety
/// `p` must be valid for reads.
#[carina::step]
unsafe fn read_checked(p: *const u64) -> Result<u64, &'static str> {
    if p.is_null() {
        return Err("null");
    }
    Ok(unsafe { *p })
}

#[carina::step(name = "outer")]
fn outer() -> u32 {
    inner() + inner()
}

#[carina::step(name = "inner")]
fn inner() -> u32 {
    1
}

#[carina::step(name = "panics")]
fn panics() {
    panic!("on purpose");
}

#[carina::step(name = "async_work", items = n * 2)]
async fn async_work(n: u64) -> u64 {
    yield_once().await;
    n + 1
}

#[carina::step(name = "async_fails")]
async fn async_fails(fail: bool) -> Result<u64, std::num::ParseIntError> {
    yield_once().await;
    let n: u64 = if fail { "x".parse()? } else { "3".parse()? };
    Ok(n)
}

struct Service {
    base: u64,
}

impl Service {
    #[carina::step(name = "service::call")]
    async fn call(&self, x: u64) -> Result<u64, String> {
        yield_once().await;
        if x == 0 {
            return Err("zero".into());
        }
        Ok(self.base + x)
    }
}

// ---- a tiny executor -------------------------------------------------------------------------

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Polls a future to completion on this thread (the futures here only ever yield once and wake
/// themselves at once).
fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// Returns `Pending` once, then `Ready`.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

// ---- the test --------------------------------------------------------------------------------

fn only<'a>(steps: &'a [StepRecord], name: &str) -> &'a StepRecord {
    let found: Vec<&StepRecord> = steps.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one step named {name:?}, found {found:#?}"
    );
    found[0]
}

fn all<'a>(steps: &'a [StepRecord], name: &str) -> Vec<&'a StepRecord> {
    steps.iter().filter(|s| s.name == name).collect()
}

use carina::testing::serial;

#[test]
fn recorded_steps() {
    let _serial = serial();
    let (sink, recs) = MemorySink::new();
    let run = carina::Run::builder("t")
        .run_file(false)
        .sink(sink)
        .constant_watts(10.0)
        .start()
        .unwrap();

    assert_eq!(default_name(), 7);
    custom_name();
    r#loop();

    COUNTER.set(5);
    assert_eq!(items_before_body(3), 8);
    assert_eq!(sum(&[1, 2, 3]), 6);

    assert_eq!(fallible(false), Ok(42));
    assert_eq!(fallible(true), Err("asked to".to_string()));
    assert!(io_fallible(false).is_ok());
    assert!(io_fallible(true).is_err());
    assert_eq!(early_return(20), 10);

    let mut acc = Acc { total: 0 };
    acc.add(2).add(3);
    assert_eq!(acc.total(), 5);
    *acc.field(true).unwrap() += 1;
    assert!(acc.field(false).is_err());
    assert_eq!(acc.into_total(), 6);
    assert_eq!(Square(3.0).area(), 9.0);

    assert_eq!(largest(&[3, 9, 4]), Some(&9));
    assert_eq!(largest::<&str>(&[]), None);

    let x = 11u64;
    assert_eq!(unsafe { read(&x) }, 11);
    assert_eq!(unsafe { read_checked(&x) }, Ok(11));
    assert_eq!(unsafe { read_checked(std::ptr::null()) }, Err("null"));

    assert_eq!(outer(), 2);

    assert!(std::panic::catch_unwind(panics).is_err());

    assert_eq!(block_on(async_work(4)), 5);
    assert_eq!(block_on(async_fails(false)), Ok(3));
    assert!(block_on(async_fails(true)).is_err());
    let service = Service { base: 10 };
    assert_eq!(block_on(service.call(1)), Ok(11));
    assert_eq!(block_on(service.call(0)), Err("zero".to_string()));
    assert_eq!(train_step(true), Ok(1));
    assert!(train_step(false).is_err());
    assert_eq!(block_on(async_gpu(1)), 2);

    run.finish().unwrap();
    let steps = recs.steps();

    // `gpu`: GPU steps, with the other arguments kept.
    let gpu: Vec<_> = steps.iter().filter(|s| s.name == "train_step").collect();
    assert_eq!(gpu.len(), 2);
    assert!(gpu.iter().all(|s| s.gpu && s.items == 2));
    assert_eq!(gpu[1].status, StepStatus::Error);
    let a = only(&steps, "main::macro_step::async_gpu");
    assert!(a.gpu && a.r#async);
    assert!(!only(&steps, "custom").gpu);

    // Names: default `module_path!()::fn`, custom.
    let s = only(&steps, "main::macro_step::default_name");
    assert_eq!(s.status, StepStatus::Ok);
    assert_eq!(s.items, 0);
    assert!(!s.r#async);
    assert_eq!(s.parent, None);
    assert!(s.end_s >= s.start_s);
    only(&steps, "custom");
    only(&steps, "main::macro_step::loop");

    // Items: evaluated before the body, converted to u64.
    assert_eq!(only(&steps, "main::macro_step::items_before_body").items, 5);
    assert_eq!(only(&steps, "main::macro_step::sum").items, 3);

    // Result: Err (returned or via `?`) is an error, Ok is ok.
    let fallible = all(&steps, "main::macro_step::fallible");
    let statuses: Vec<StepStatus> = fallible.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Ok, StepStatus::Error]);
    let io = all(&steps, "main::macro_step::io_fallible");
    let statuses: Vec<StepStatus> = io.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Ok, StepStatus::Error]);
    assert_eq!(
        only(&steps, "main::macro_step::early_return").status,
        StepStatus::Ok
    );

    // Methods.
    let adds = all(&steps, "main::macro_step::add");
    let items: Vec<u64> = adds.iter().map(|s| s.items).collect();
    assert_eq!(items, [2, 3]);
    only(&steps, "main::macro_step::total");
    let field = all(&steps, "acc::field");
    let statuses: Vec<StepStatus> = field.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Ok, StepStatus::Error]);
    only(&steps, "main::macro_step::into_total");
    only(&steps, "square::area");

    // Generic function.
    let largest = all(&steps, "main::macro_step::largest");
    let items: Vec<u64> = largest.iter().map(|s| s.items).collect();
    assert_eq!(items, [3, 0]);

    // Unsafe functions.
    only(&steps, "main::macro_step::read");
    let checked = all(&steps, "main::macro_step::read_checked");
    let statuses: Vec<StepStatus> = checked.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Ok, StepStatus::Error]);

    // Nesting: both `inner` calls are children of `outer`.
    let outer = only(&steps, "outer");
    let inners = all(&steps, "inner");
    assert_eq!(inners.len(), 2);
    for inner in &inners {
        assert_eq!(inner.parent, Some(outer.id));
        assert_eq!(inner.thread, outer.thread);
        assert!(inner.start_s >= outer.start_s && inner.end_s <= outer.end_s);
    }
    assert_ne!(inners[0].id, inners[1].id);

    // Panic.
    assert_eq!(only(&steps, "panics").status, StepStatus::Panicked);

    // Async: one record per call, flagged async, with its items.
    let s = only(&steps, "async_work");
    assert!(s.r#async);
    assert!(!s.cancelled);
    assert!(!s.unfinished);
    assert_eq!(s.items, 8);
    assert_eq!(s.status, StepStatus::Ok);
    let fails = all(&steps, "async_fails");
    let statuses: Vec<StepStatus> = fails.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Ok, StepStatus::Error]);
    assert!(fails.iter().all(|s| s.r#async));
    let calls = all(&steps, "service::call");
    let statuses: Vec<StepStatus> = calls.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Ok, StepStatus::Error]);

    // Nothing else was recorded as unfinished.
    assert!(steps.iter().all(|s| !s.unfinished), "{steps:#?}");
}

/// Without a run the functions behave as written and record nothing.
#[test]
fn without_a_run() {
    let _serial = serial();
    assert!(!carina::is_recording());
    assert!(fallible(true).is_err());
    assert_eq!(early_return(3), 3);
    assert_eq!(block_on(async_work(1)), 2);
}
