"""What `ddp-codemod probe probe_factory.py:make` trains: Net, whose aux_head gets no gradient."""

import torch
from model import Net


def make():
    def batch(step, rank):
        gen = torch.Generator().manual_seed(10_000 * rank + step)
        return torch.randn(8, 16, generator=gen), torch.randint(0, 4, (8,), generator=gen)

    def loss(model, batch):
        x, y = batch
        return torch.nn.functional.cross_entropy(model(x), y)

    return {"model": Net(), "batch": batch, "loss": loss}
