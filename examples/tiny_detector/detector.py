"""A tiny detector laid out like DAMO-YOLO: config file in, model out, DDP built by a helper.

`build_ddp_model` hard-codes `device_ids=[local_rank]` as DAMO-YOLO's does, so it cannot run
on a CPU box; `ddp-codemod probe` builds its own CPU DDP around the same model instead.
"""

import runpy

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


def parse_config(path):
    """The config file's `config` dict (DAMO-YOLO's parse_config reads a Python file too)."""
    return runpy.run_path(path)["config"]


def conv_bn(cin, cout, stride=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class Detector(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        widths = cfg["widths"]
        stages, cin = [], 3
        for width in widths:
            stages.append(conv_bn(cin, width, stride=2))
            cin = width
        self.backbone = nn.Sequential(*stages)
        self.neck = conv_bn(cin, cfg["neck"])
        self.cls_head = nn.Conv2d(cfg["neck"], cfg["num_classes"], 1)
        self.reg_head = nn.Conv2d(cfg["neck"], 4, 1)

    def forward(self, images, targets=None):
        x = self.neck(self.backbone(images))
        cls, reg = self.cls_head(x).mean((2, 3)), self.reg_head(x).mean((2, 3))
        if targets is None:
            return cls, reg
        loss_cls = nn.functional.cross_entropy(cls, targets["labels"])
        loss_reg = nn.functional.l1_loss(reg.sigmoid(), targets["boxes"])
        return {"total_loss": loss_cls + loss_reg, "loss_cls": loss_cls, "loss_reg": loss_reg}


def build_local_model(cfg, device="cuda"):
    return Detector(cfg["model"]).to(torch.device(device))


def build_ddp_model(model, local_rank):
    model = DDP(
        model,
        device_ids=[local_rank],
        output_device=local_rank,
        broadcast_buffers=False,
        find_unused_parameters=True,
    )
    return model
