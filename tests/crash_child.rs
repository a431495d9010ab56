//! The child process of `crash_durability`: records 200 ms steps into a run under the directory
//! given as its argument until it is killed. It prints the run file's path first. With a second
//! argument `abort` or `exit` it ends that way right after `start()` returns instead (no
//! destructor, no `finish`).

use std::time::{Duration, Instant};

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: crash-child <output dir>");
        std::process::exit(2);
    };
    let run = match carina::Run::builder("crash")
        .output_dir(dir)
        .constant_watts(50.0)
        .start()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("crash-child: {e}");
            std::process::exit(1);
        }
    };
    match run.run_file() {
        Some(p) => println!("started {}", p.display()),
        None => println!("started without a run file"),
    }
    match std::env::args().nth(2).as_deref() {
        Some("abort") => std::process::abort(),
        Some("exit") => std::process::exit(0),
        _ => {}
    }
    loop {
        let mut g = carina::step("work");
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(200) {
            std::hint::black_box(t.elapsed());
        }
        g.add_items(1);
    }
}
