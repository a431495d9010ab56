"""A small MLP trained with NumPy, one Carina step per epoch and per batch.

Run it from a checkout after ``pip install ./carina-py numpy``::

    python3 examples/python/train_numpy.py --epochs 5
    carina summary carina-runs/train-numpy      # the run file, read back by the CLI

What it shows: a run around the whole job, a step per epoch with the batches nested in it, the
batch's items (samples seen) so the summary gives joules per sample, the evaluation as a
decorated function, and the run summary with its method and band (this machine has no energy
counter, so the figure is an estimate and says so).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import carina


def make_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals: a task a linear model cannot solve, an MLP can."""
    t = rng.uniform(0.0, 3.0 * np.pi, n)
    label = rng.integers(0, 2, n)
    sign = np.where(label == 1, 1.0, -1.0)
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) / (3.0 * np.pi)
    x += rng.normal(0.0, 0.02, x.shape)
    return x.astype(np.float32), label.astype(np.float32)


class Mlp:
    """Two hidden layers, tanh, a sigmoid output; plain SGD with momentum."""

    def __init__(self, rng: np.random.Generator, hidden: int) -> None:
        def layer(n_in: int, n_out: int) -> list[np.ndarray]:
            w = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_in, n_out)).astype(np.float32)
            return [w, np.zeros(n_out, dtype=np.float32)]

        self.params = layer(2, hidden) + layer(hidden, hidden) + layer(hidden, 1)
        self.velocity = [np.zeros_like(p) for p in self.params]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        w1, b1, w2, b2, w3, b3 = self.params
        h1 = np.tanh(x @ w1 + b1)
        h2 = np.tanh(h1 @ w2 + b2)
        out = 1.0 / (1.0 + np.exp(-(h2 @ w3 + b3)))
        return out[:, 0], [x, h1, h2]

    def train_batch(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        out, (a0, h1, h2) = self.forward(x)
        eps = 1e-7
        loss = float(-np.mean(y * np.log(out + eps) + (1 - y) * np.log(1 - out + eps)))
        w1, _, w2, _, w3, _ = self.params
        d3 = ((out - y) / len(y))[:, None]
        d2 = (d3 @ w3.T) * (1 - h2**2)
        d1 = (d2 @ w2.T) * (1 - h1**2)
        grads = [a0.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)]
        for p, v, g in zip(self.params, self.velocity, grads):
            v *= 0.9
            v -= lr * g
            p += v
        return loss


@carina.step("evaluate", items=lambda model, x, y: len(y))
def evaluate(model: Mlp, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy on held-out data; the decorator makes each call one step, items = samples."""
    out, _ = model.forward(x)
    return float(np.mean((out > 0.5) == (y > 0.5)))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--out", default="carina-runs", help="directory of run files")
    parser.add_argument("--zone", default="DE", help="grid zone of the CO2e factor")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(7)
    x, y = make_data(rng, args.samples)
    split = args.samples * 4 // 5
    x_train, y_train, x_test, y_test = x[:split], y[:split], x[split:], y[split:]
    model = Mlp(rng, args.hidden)

    with carina.Run("train-numpy", output_dir=args.out, carbon_zone=args.zone) as run:
        for epoch in range(args.epochs):
            with carina.step("epoch") as epoch_step:
                order = rng.permutation(len(y_train))
                losses = []
                for start in range(0, len(order), args.batch):
                    idx = order[start : start + args.batch]
                    with carina.step("batch", items=len(idx)):
                        losses.append(model.train_batch(x_train[idx], y_train[idx], lr=0.1))
                epoch_step.add_items(len(order))
            accuracy = evaluate(model, x_test, y_test)
            print(f"epoch {epoch}: loss {np.mean(losses):.4f}, accuracy {accuracy:.3f}")

    summary = run.summary
    print(summary)
    for s in summary.steps_summary:
        if s.items:
            print(f"  {s.name}: {s.energy_j / s.items * 1e3:.4f} mJ per sample ({s.method})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
