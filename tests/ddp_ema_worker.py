"""Run under torchrun by test_ema.py: train, then dump this rank's raw and EMA weights and optimizer state."""
import sys

import torch

from foodmtl.config import load_config
from foodmtl.engine.trainer import Trainer

if __name__ == "__main__":
    config, dump, *overrides = sys.argv[1:]
    trainer = Trainer(load_config(config, overrides))
    trainer.fit()
    torch.save({"objective": trainer.objective.state_dict(), "optimizer": trainer.optimizer.state_dict(),
                "ema": trainer.ema.module.state_dict(), "unfrozen": trainer.state.unfrozen},
               f"{dump}/rank{trainer.info.rank}.pt")
