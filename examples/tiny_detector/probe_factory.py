"""What `ddp-codemod probe probe_factory.py:make` trains: the detector from its config, on CPU."""

import os

import torch
from detector import build_local_model, parse_config

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "tiny.py")


def make():
    cfg = parse_config(CONFIG)
    model = build_local_model(cfg, device="cpu")
    train = cfg["train"]
    classes = cfg["model"]["num_classes"]

    def batch(step, rank):  # the same (step, rank) always gives the same tensors
        gen = torch.Generator().manual_seed(10_000 * rank + step)
        n, size = train["batch_size"], train["image_size"]
        images = torch.randn(n, 3, size, size, generator=gen)
        targets = {
            "labels": torch.randint(0, classes, (n,), generator=gen),
            "boxes": torch.rand(n, 4, generator=gen),
        }
        return images, targets

    def loss(model, batch):  # model is the DDP wrapper
        images, targets = batch
        return model(images, targets)["total_loss"]

    def optimizer(params, model):  # model: the bare detector, for parameter groups
        decay = [p for p in model.parameters() if p.ndim > 1]  # no decay on BN and biases
        rest = [p for p in model.parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": train["weight_decay"]}, {"params": rest}]
        return torch.optim.SGD(groups, lr=train["lr"], momentum=train["momentum"])

    return {"model": model, "batch": batch, "loss": loss, "optimizer": optimizer}
