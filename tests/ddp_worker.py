"""Run under torchrun by test_distributed.py: train, then dump this rank's state."""
import sys

import torch

from foodmtl.config import load_config
from foodmtl.engine.trainer import Trainer

if __name__ == "__main__":
    config, dump, *overrides = sys.argv[1:]
    trainer = Trainer(load_config(config, overrides))
    rank = trainer.info.rank
    trainer.fit()
    torch.save({"objective": trainer.objective.state_dict(), "optimizer": trainer.optimizer.state_dict()},
               f"{dump}/rank{rank}.pt")
