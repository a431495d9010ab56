//! A run that used CPU never reports zero energy, however short.

use crate::common;

#[test]
fn a_seven_millisecond_run_on_four_threads_has_energy() {
    let _s = common::serial();
    let (sink, _recs) = carina::sink::MemorySink::new();
    // The estimation model on the real /proc, in process scope: the path that runs here.
    let run = carina::Run::builder("short")
        .run_file(false)
        .sink(sink)
        .start()
        .unwrap();
    let t = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5_500 {
                    let _g = carina::step("s");
                    common::spin(1);
                }
            });
        }
    });
    let elapsed = t.elapsed();
    let s = run.finish().unwrap();
    assert_eq!(s.steps(), 22_000);
    // About 10 ms of work on an idle machine: shorter than one /proc tick per thread. (Not
    // asserted: a loaded CI machine may stretch it, and the energy must be > 0 either way.)
    assert!(s.host_energy().0 > 0.0, "host energy {}", s.host_energy().0);
    assert!(
        s.energy().0 > 0.0,
        "energy {} J of host {} J in {elapsed:?}",
        s.energy().0,
        s.host_energy().0
    );
}
