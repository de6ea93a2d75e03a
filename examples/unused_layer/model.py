"""A classifier with an auxiliary head that is built but never called: a real unused layer."""

from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        self.head = nn.Linear(32, 4)
        self.aux_head = nn.Linear(32, 4)  # meant for deep supervision; forward never calls it

    def forward(self, x):
        return self.head(self.body(x))


def build_ddp_model(model, local_rank):
    return DDP(model, device_ids=[local_rank], find_unused_parameters=True)
