import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP


class Detector(torch.nn.Module):
    def __init__(self, aux_head=False):
        super().__init__()
        self.backbone = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 2)
        self.aux_head = torch.nn.Linear(8, 2) if aux_head else None  # forward never calls it

    def forward(self, x):
        return self.head(torch.relu(self.backbone(x)))


def main():
    dist.init_process_group("gloo")
    student = DDP(Detector(), find_unused_parameters=True)
    teacher = DDP(Detector(aux_head=True), find_unused_parameters=True)
    params = list(student.parameters()) + list(teacher.parameters())
    opt = torch.optim.SGD(params, lr=0.01)
    for step in range(1000):  # `ddp-codemod trace --steps N` ends the run after N steps
        x = torch.randn(4, 8, generator=torch.Generator().manual_seed(step))
        loss = student(x).sum() + teacher(x).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
