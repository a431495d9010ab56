//! A small training loop recorded with Carina: a one-hidden-layer MLP (tanh, sigmoid output)
//! learns to separate two interleaved spirals with mini-batch SGD and momentum. Pure Rust, no
//! dependencies besides `carina`.
//!
//! ```text
//! cargo run --release --example train -- --epochs 200 --samples 10000 --batch 64
//! ```
//!
//! Carina steps: `generate_data`; per epoch an `epoch` step (items = training samples) that
//! contains one `batch` step per mini-batch (items = batch size) and an `evaluate` step
//! (items = test samples).

use std::f64::consts::PI;
use std::process::ExitCode;
use std::time::Instant;

const HELP: &str = "\
train: a one-hidden-layer MLP on two interleaved spirals, recorded with Carina

USAGE:
    cargo run --release --example train -- [OPTIONS]

OPTIONS:
    --epochs N     passes over the training set (default 200)
    --samples N    generated points, 80 % for training, 20 % for testing (default 10000)
    --batch B      mini-batch size (default 64)
    -h, --help     print this help

Run files go to $CARINA_DIR or ./carina-runs.";

const HIDDEN: usize = 128;
const LEARNING_RATE: f64 = 0.05;
const MOMENTUM: f64 = 0.9;
const SEED: u64 = 42;

struct Args {
    epochs: usize,
    samples: usize,
    batch: usize,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        epochs: 200,
        samples: 10000,
        batch: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let (slot, min, max) = match flag.as_str() {
            "--epochs" => (&mut args.epochs, 1, 1_000_000),
            "--samples" => (&mut args.samples, 10, 10_000_000),
            "--batch" => (&mut args.batch, 1, 1_000_000),
            _ => return Err(format!("unknown argument `{arg}` (try --help)")),
        };
        let value = inline
            .or_else(|| it.next())
            .ok_or_else(|| format!("{flag} needs a value (try --help)"))?;
        *slot = match value.trim().replace('_', "").parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                return Err(format!(
                    "{flag} expects a whole number from {min} to {max}, got `{value}`"
                ));
            }
        };
    }
    Ok(Some(args))
}

/// SplitMix64 (Steele, Lea & Flood 2014): small, fast and seedable.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
    /// Uniform in 0..n (n > 0; the modulo bias is negligible here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// A labelled point.
#[derive(Clone, Copy)]
struct Sample {
    x: [f64; 2],
    y: f64,
}

/// Two interleaved spirals (1.75 turns each, Gaussian noise), shuffled.
#[carina::step(name = "generate_data", items = n)]
fn generate_data(n: usize, rng: &mut Rng) -> Vec<Sample> {
    let mut data: Vec<Sample> = (0..n)
        .map(|i| {
            let class = i % 2;
            let t = rng.uniform().sqrt(); // denser towards the outside, where the arms are long
            let angle = t * 3.5 * PI + class as f64 * PI;
            let r = t;
            Sample {
                x: [
                    r * angle.cos() + 0.03 * rng.normal(),
                    r * angle.sin() + 0.03 * rng.normal(),
                ],
                y: class as f64,
            }
        })
        .collect();
    rng.shuffle(&mut data);
    data
}

/// 2 -> HIDDEN (tanh) -> 1 (sigmoid). The same shape holds the gradients and momentum.
struct Mlp {
    w1: [[f64; 2]; HIDDEN],
    b1: [f64; HIDDEN],
    w2: [f64; HIDDEN],
    b2: f64,
}

impl Mlp {
    fn zeros() -> Mlp {
        Mlp {
            w1: [[0.0; 2]; HIDDEN],
            b1: [0.0; HIDDEN],
            w2: [0.0; HIDDEN],
            b2: 0.0,
        }
    }

    /// Glorot-uniform weights, hidden biases uniform in [-1, 1), zero output bias. The first
    /// layer is scaled up (3x) so that the tanh units start with varied slopes and kinks
    /// across the unit disc, which spirals need.
    fn init(rng: &mut Rng) -> Mlp {
        let mut m = Mlp::zeros();
        let l1 = 3.0 * (6.0 / (2 + HIDDEN) as f64).sqrt();
        let l2 = (6.0 / (HIDDEN + 1) as f64).sqrt();
        for h in 0..HIDDEN {
            m.w1[h] = [
                l1 * (2.0 * rng.uniform() - 1.0),
                l1 * (2.0 * rng.uniform() - 1.0),
            ];
            m.b1[h] = 2.0 * rng.uniform() - 1.0;
            m.w2[h] = l2 * (2.0 * rng.uniform() - 1.0);
        }
        m
    }

    /// Probability of class 1, and the hidden activations.
    fn forward(&self, x: [f64; 2], hidden: &mut [f64; HIDDEN]) -> f64 {
        let mut z = self.b2;
        let units = self.w1.iter().zip(&self.b1).zip(&self.w2);
        for (a, ((w1, b1), w2)) in hidden.iter_mut().zip(units) {
            *a = (w1[0] * x[0] + w1[1] * x[1] + b1).tanh();
            z += w2 * *a;
        }
        1.0 / (1.0 + (-z).exp())
    }
}

/// Binary cross-entropy of prediction `p` for label `y`, clamped away from log(0).
fn bce(p: f64, y: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
}

/// One SGD-with-momentum update on a mini-batch; returns the batch's mean loss.
#[carina::step(name = "batch", items = batch.len())]
fn train_batch(model: &mut Mlp, velocity: &mut Mlp, grad: &mut Mlp, batch: &[Sample]) -> f64 {
    *grad = Mlp::zeros();
    let mut hidden = [0.0; HIDDEN];
    let mut loss = 0.0;
    for s in batch {
        let p = model.forward(s.x, &mut hidden);
        loss += bce(p, s.y);
        // d(BCE)/dz for a sigmoid output is p - y.
        let dz = p - s.y;
        grad.b2 += dz;
        for (h, &a) in hidden.iter().enumerate() {
            grad.w2[h] += dz * a;
            let da = dz * model.w2[h] * (1.0 - a * a);
            grad.b1[h] += da;
            grad.w1[h][0] += da * s.x[0];
            grad.w1[h][1] += da * s.x[1];
        }
    }
    let scale = LEARNING_RATE / batch.len() as f64;
    let step = |v: &mut f64, p: &mut f64, g: f64| {
        *v = MOMENTUM * *v - scale * g;
        *p += *v;
    };
    step(&mut velocity.b2, &mut model.b2, grad.b2);
    for h in 0..HIDDEN {
        step(&mut velocity.w2[h], &mut model.w2[h], grad.w2[h]);
        step(&mut velocity.b1[h], &mut model.b1[h], grad.b1[h]);
        step(&mut velocity.w1[h][0], &mut model.w1[h][0], grad.w1[h][0]);
        step(&mut velocity.w1[h][1], &mut model.w1[h][1], grad.w1[h][1]);
    }
    loss / batch.len() as f64
}

/// Mean loss and accuracy on a data set.
#[carina::step(name = "evaluate", items = data.len())]
fn evaluate(model: &Mlp, data: &[Sample]) -> (f64, f64) {
    let mut hidden = [0.0; HIDDEN];
    let (mut loss, mut correct) = (0.0, 0usize);
    for s in data {
        let p = model.forward(s.x, &mut hidden);
        loss += bce(p, s.y);
        if (p >= 0.5) == (s.y >= 0.5) {
            correct += 1;
        }
    }
    let n = data.len().max(1) as f64;
    (loss / n, correct as f64 / n)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("train: error: {msg}");
            return ExitCode::from(2);
        }
    };
    let run = match carina::Run::builder("train").start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("train: error: cannot start the Carina run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let t0 = Instant::now();
    let mut rng = Rng(SEED);
    let data = generate_data(args.samples, &mut rng);
    let n_test = (args.samples / 5).max(1);
    let (test, train) = data.split_at(n_test);
    let mut train = train.to_vec();
    let mut model = Mlp::init(&mut rng);
    let mut velocity = Mlp::zeros();
    let mut grad = Mlp::zeros();
    println!(
        "train: MLP 2-{HIDDEN}-1 on two spirals: {} training / {} test samples, batch {}, {} epochs",
        train.len(),
        test.len(),
        args.batch,
        args.epochs
    );
    // About ten progress lines, plus the first and the last epoch.
    let report_every = args.epochs.div_ceil(10).max(1);
    let mut last = (0.0, 0.0, 0.0);
    for epoch in 1..=args.epochs {
        let mut g = carina::step("epoch");
        g.add_items(train.len() as u64);
        rng.shuffle(&mut train);
        let mut loss_sum = 0.0;
        for chunk in train.chunks(args.batch) {
            loss_sum +=
                train_batch(&mut model, &mut velocity, &mut grad, chunk) * chunk.len() as f64;
        }
        let train_loss = loss_sum / train.len() as f64;
        let (test_loss, test_acc) = evaluate(&model, test);
        drop(g);
        last = (train_loss, test_loss, test_acc);
        if epoch == 1 || epoch % report_every == 0 || epoch == args.epochs {
            println!(
                "epoch {epoch:>5}: train loss {train_loss:.4}  test loss {test_loss:.4}  test accuracy {:.1} %",
                test_acc * 100.0
            );
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let summary = match run.finish() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("train: error: cannot finish the Carina run: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "done: {} epochs in {elapsed:.1} s; final train loss {:.4}, test loss {:.4}, test accuracy {:.1} %",
        args.epochs,
        last.0,
        last.1,
        last.2 * 100.0
    );
    // Energy (kind, source, host share), carbon, items, per-step lines and the run file.
    print!("{summary}");
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    ExitCode::SUCCESS
}
