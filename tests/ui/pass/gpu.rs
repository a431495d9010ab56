// `gpu`: a GPU step, on plain, `Result`-returning and async functions, with other arguments.

#[carina::step(gpu)]
fn forward(x: f32) -> f32 {
    x * 2.0
}

#[carina::step(name = "train_step", gpu, items = batch.len())]
fn train_step(batch: &[f32]) -> Result<f32, String> {
    Ok(batch.iter().sum())
}

#[carina::step(gpu)]
async fn infer(x: u8) -> u8 {
    x + 1
}

fn main() {
    assert_eq!(forward(1.5), 3.0);
    assert_eq!(train_step(&[1.0, 2.0]), Ok(3.0));
    let _ = infer(1);
}
