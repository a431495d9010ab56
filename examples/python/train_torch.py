"""The MLP of ``train_numpy.py`` in PyTorch, on CUDA when there is a GPU, else on the CPU.

Run it where torch is installed, after ``pip install ./carina-py``::

    python3 examples/python/train_torch.py --epochs 5
    carina summary carina-runs/train-torch

What it shows on top of the NumPy example: the forward/backward/step of each batch is a **GPU
step** (``gpu=True``), so on a machine with an NVIDIA GPU the GPU's energy goes to it by the time
it was open, not by the CPU time its thread burned (the thread mostly waits for kernels); and the
run calls ``torch.cuda.synchronize`` at every step exit (``on_step_exit``), so a step ends when
its kernels end, not when they were queued. The data loading is an ordinary step: it gets CPU
energy, never GPU energy. Without CUDA the same code runs on the CPU and the GPU marking does
nothing harmful (no GPU source, so no GPU energy to split).
"""

from __future__ import annotations

import argparse
import math
import sys

import torch

import carina


def make_data(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals, as in the NumPy example."""
    t = torch.rand(n, generator=generator) * 3.0 * math.pi
    label = torch.randint(0, 2, (n,), generator=generator).float()
    sign = label * 2.0 - 1.0
    x = torch.stack([sign * t * torch.cos(t), sign * t * torch.sin(t)], dim=1) / (3.0 * math.pi)
    x += torch.randn(x.shape, generator=generator) * 0.02
    return x, label


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="carina-runs", help="directory of run files")
    parser.add_argument("--zone", default="DE", help="grid zone of the CO2e factor")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    generator = torch.Generator().manual_seed(7)
    x, y = make_data(args.samples, generator)
    split = args.samples * 4 // 5
    x_train, y_train = x[:split], y[:split]
    x_test, y_test = x[split:].to(device), y[split:].to(device)

    model = torch.nn.Sequential(
        torch.nn.Linear(2, args.hidden), torch.nn.Tanh(),
        torch.nn.Linear(args.hidden, args.hidden), torch.nn.Tanh(),
        torch.nn.Linear(args.hidden, 1),
    ).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    # The hook makes each step's end wait for the GPU: without it a GPU step would end when its
    # kernels were queued and its energy would land in whatever step ran next.
    hook = torch.cuda.synchronize if cuda else None
    with carina.Run("train-torch", output_dir=args.out, carbon_zone=args.zone,
                    on_step_exit=hook) as run:
        for epoch in range(args.epochs):
            with carina.step("epoch", items=split):
                order = torch.randperm(split, generator=generator)
                for start in range(0, split, args.batch):
                    with carina.step("load", items=0) as load:
                        idx = order[start : start + args.batch]
                        xb = x_train[idx].to(device, non_blocking=True)
                        yb = y_train[idx].to(device, non_blocking=True)
                        load.add_items(len(idx))
                    with carina.step("train_batch", items=len(idx), gpu=cuda):
                        optimizer.zero_grad(set_to_none=True)
                        loss = loss_fn(model(xb)[:, 0], yb)
                        loss.backward()
                        optimizer.step()
            with carina.step("evaluate", items=len(y_test), gpu=cuda), torch.no_grad():
                accuracy = ((model(x_test)[:, 0] > 0) == (y_test > 0.5)).float().mean().item()
            print(f"epoch {epoch}: loss {loss.item():.4f}, accuracy {accuracy:.3f} on {device}")

    summary = run.summary
    print(summary)
    for s in summary.steps_summary:
        print(f"  {s.name:12} {s.energy_j:10.3f} J  gpu={s.gpu}  {s.method}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
