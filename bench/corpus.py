"""Generate a corpus of realistic training-repo Python files for the benchmarks.

Seeded and deterministic: models, datasets, engines, utils and train scripts of a few
kilobytes each, spread over repos of 100 files. 0.7% of the files set
find_unused_parameters in one of the spellings real repos use (torch DDP, a repo
subclass, accelerate, Lightning, Hugging Face, kwargs dicts) and 0.3% only mention it
in a comment, a string or an argparse flag: 1% pass the byte pre-filter, as in the
training repos the team measured (under 1%) and in torch's own source (14 of 1,329).

    python bench/corpus.py OUT [--files 3000] [--seed 0] [--candidates 0.01]
"""

from __future__ import annotations

import argparse
import random
import textwrap
from pathlib import Path

IMPORTS = [
    "import os",
    "import sys",
    "import math",
    "import time",
    "import json",
    "import random",
    "import logging",
    "import argparse",
    "from typing import Dict, List, Optional, Tuple",
    "import numpy as np",
    "import torch",
    "import torch.nn as nn",
    "import torch.nn.functional as F",
    "import torch.distributed as dist",
    "from torch.utils.data import DataLoader, Dataset",
]
WORDS = [
    "res", "conv", "attn", "mlp", "proj", "head", "neck", "backbone", "fpn", "decoder",
    "encoder", "stem", "patch", "token", "mix", "gate", "router", "expert", "norm", "pool",
]  # fmt: skip
LAYERS = [
    "nn.Conv2d({a}, {b}, kernel_size=3, padding=1, bias=False)",
    "nn.BatchNorm2d({b})",
    "nn.Linear({a}, {b})",
    "nn.LayerNorm({b})",
    "nn.Dropout(p=0.{d})",
    "nn.GELU()",
    "nn.ReLU(inplace=True)",
    "nn.Embedding({a}, {b})",
]

SITES = [
    """from torch.nn.parallel import DistributedDataParallel as DDP


def build_ddp_model(model, local_rank):
    model = DDP(model,
                device_ids=[local_rank],
                output_device=local_rank,
                broadcast_buffers=False,
                find_unused_parameters=True)
    return model
""",
    """def wrap(model, args):
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[args.gpu], find_unused_parameters=args.find_unused_parameters
    )
""",
    """from accelerate import Accelerator, DistributedDataParallelKwargs

ddp_kwargs = DistributedDataParallelKwargs(find_unused_parameters=True)
accelerator = Accelerator(kwargs_handlers=[ddp_kwargs])
""",
    """import lightning as L
from lightning.pytorch.strategies import DDPStrategy


def make_trainer(cfg):
    return L.Trainer(devices=cfg.gpus, strategy=DDPStrategy(find_unused_parameters=True))
""",
    """from transformers import TrainingArguments

training_args = TrainingArguments(
    output_dir="out",
    per_device_train_batch_size=8,
    ddp_find_unused_parameters=True,
)
""",
    """from torch.nn.parallel import DistributedDataParallel


def wrap(model, rank):
    ddp_args = dict(device_ids=[rank], find_unused_parameters=True)
    return DistributedDataParallel(model, **ddp_args)
""",
    """from torch.nn.parallel import DistributedDataParallel


class TaskDDP(DistributedDataParallel):
    def extra_repr(self):
        return "task"


def wrap(model, rank):
    return TaskDDP(model, device_ids=[rank], find_unused_parameters=True)
""",
]
MENTIONS = [
    "# NOTE: find_unused_parameters=True is set in build_ddp_model; see docs/ddp.md\n",
    'HELP = "pass --find_unused_parameters when some heads are frozen"\n',
    "def add_ddp_args(parser):\n"
    "    parser.add_argument('--find_unused_parameters', action='store_true')\n"
    "    return parser\n",
]


def _name(rng: random.Random) -> str:
    return "".join(w.capitalize() for w in rng.sample(WORDS, 2))


def _module_class(rng: random.Random) -> str:
    name = _name(rng) + rng.choice(["Block", "Layer", "Head", "Net"])
    a, b = rng.choice([64, 128, 256, 512]), rng.choice([64, 128, 256, 512])
    layers = [
        f"        self.{rng.choice(WORDS)}{i} = "
        + rng.choice(LAYERS).format(a=a, b=b, d=rng.randint(1, 5))
        for i in range(rng.randint(3, 8))
    ]
    names = [line.split("=")[0].strip()[5:] for line in layers]
    steps = "\n".join(f"        x = self.{n}(x)" for n in names)
    return (
        f"class {name}(nn.Module):\n"
        f'    """{rng.choice(WORDS).capitalize()} block with {len(layers)} layers."""\n\n'
        f"    def __init__(self, in_channels={a}, out_channels={b}):\n"
        f"        super().__init__()\n" + "\n".join(layers) + "\n\n"
        "    def forward(self, x):\n"
        f"{steps}\n"
        "        return x\n"
    )


def _dataset(rng: random.Random) -> str:
    name = _name(rng) + "Dataset"
    return textwrap.dedent(f'''\
        class {name}(Dataset):
            """Reads samples listed in an index file; each line is `path label`."""

            def __init__(self, root, split="train", transform=None):
                self.root = root
                self.transform = transform
                with open(os.path.join(root, split + ".txt")) as f:
                    self.items = [line.split() for line in f if line.strip()]

            def __len__(self):
                return len(self.items)

            def __getitem__(self, index):
                path, label = self.items[index]
                sample = np.load(os.path.join(self.root, path))
                if self.transform is not None:
                    sample = self.transform(sample)
                return torch.as_tensor(sample), int(label)
        ''')


def _function(rng: random.Random) -> str:
    verb = rng.choice(["train_one_epoch", "evaluate", "reduce_loss", "warmup_lr", "log_stats"])
    name = f"{verb}_{rng.choice(WORDS)}"
    return textwrap.dedent(f'''\
        def {name}(model, loader, optimizer=None, epoch=0, log_every={rng.randint(10, 100)}):
            """One pass over `loader`; returns the mean loss."""
            model.train(optimizer is not None)
            total, count = 0.0, 0
            start = time.time()
            for step, (images, targets) in enumerate(loader):
                images = images.cuda(non_blocking=True)
                targets = targets.cuda(non_blocking=True)
                logits = model(images)
                loss = F.cross_entropy(logits, targets, label_smoothing=0.{rng.randint(0, 2)})
                if optimizer is not None:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), {rng.randint(1, 10)}.0)
                    optimizer.step()
                total += loss.item() * images.size(0)
                count += images.size(0)
                if step % log_every == 0 and dist.get_rank() == 0:
                    elapsed = time.time() - start
                    logging.info("epoch %d step %d loss %.4f (%.1fs)", epoch, step, loss, elapsed)
            return total / max(count, 1)
        ''')


def _config(rng: random.Random) -> str:
    keys = {
        "lr": rng.choice([0.1, 0.01, 3e-4]),
        "weight_decay": rng.choice([1e-4, 5e-2]),
        "epochs": rng.randint(10, 300),
        "batch_size": rng.choice([32, 64, 128]),
        "warmup_epochs": rng.randint(0, 10),
    }
    body = "".join(f"    {k!r}: {v!r},\n" for k, v in keys.items())
    return f"DEFAULTS = {{\n{body}}}\n"


def make_file(rng: random.Random, site: str | None, mention: str | None) -> str:
    parts = ["\n".join(sorted(rng.sample(IMPORTS, rng.randint(6, len(IMPORTS))))) + "\n"]
    parts.append(_config(rng))
    makers = [_module_class, _module_class, _dataset, _function, _function]
    for _ in range(rng.randint(4, 13)):
        parts.append(rng.choice(makers)(rng))
    if mention:
        parts.insert(rng.randint(1, len(parts)), mention)
    if site:
        parts.append(site)
    return "\n\n".join(parts)


def generate(out: Path, files: int = 3000, seed: int = 0, candidates: float = 0.01) -> list[Path]:
    rng = random.Random(seed)
    written = []
    per_repo = 100
    for i in range(files):
        repo = out / f"repo{i // per_repo:03d}"
        folder = rng.choice(["models", "data", "engine", "utils", "tools"])
        path = repo / "src" / folder / f"{rng.choice(WORDS)}_{i:05d}.py"
        roll = rng.random()
        site = rng.choice(SITES) if roll < 0.7 * candidates else None
        mention = rng.choice(MENTIONS) if 0.7 * candidates <= roll < candidates else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make_file(rng, site, mention))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", type=float, default=0.01, help="share of files")
    args = parser.parse_args()
    written = generate(args.out, args.files, args.seed, args.candidates)
    size = sum(p.stat().st_size for p in written)
    print(f"{len(written)} files, {size / 1e6:.1f} MB under {args.out}")


if __name__ == "__main__":
    main()
