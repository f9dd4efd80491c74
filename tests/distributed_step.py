"""One training step of the tiny model under torch.distributed, each process holding a slice of the batch.

Run by tests/test_distributed.py with `torchrun --nproc_per_node N tests/distributed_step.py OUT`; rank 0 writes
the loss, its own logits and every parameter's gradient (DDP-averaged) to OUT.
"""

import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import random_batch, tiny_model  # noqa: E402


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = tiny_model(seed=5).train()  # identical initial weights on every process
    batch = random_batch(batch=4, seed=7)
    share = 4 // world
    local = {key: value[rank * share : (rank + 1) * share] for key, value in batch.items()}
    ddp = DistributedDataParallel(model)
    output = ddp(**local, return_loss=True)
    output.loss.backward()
    if rank == 0:
        tensors = {f"grad.{n}": p.grad.contiguous() for n, p in model.named_parameters() if p.grad is not None}
        tensors["loss"] = output.loss.detach()
        tensors["logits_per_text"] = output.logits_per_text.detach().contiguous()
        save_file(tensors, out)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
