"""The dynamical-isometry fair weight-sharing supernet: an evaluator that trains (DI-NAS-inspired).

Trained once (:func:`train_supernet`, ``nas supernet train``), it scores every architecture of
the space by inheriting its weights (:class:`~nas.strategies.supernet.scorer.SupernetScore`,
``--proxy 'supernet(checkpoint=CKPT)'``); :func:`inspect_supernet` (``nas supernet inspect``) shows
each candidate op's Jacobian spectrum and mean-field quantities, before and after training.
docs/supernet.md has the method, our readings where the paper is silent, and the experiment.

>>> from nas.strategies.supernet import Supernet, SupernetConfig
>>> net = Supernet(SupernetConfig(channels=4, cells_per_stage=1))
>>> import torch
>>> net(torch.zeros(2, 3, 32, 32), ("nor_conv_3x3",) * 6).shape
torch.Size([2, 10])
"""

from nas.strategies.supernet.checkpoint import Checkpoint, load_checkpoint
from nas.strategies.supernet.network import Supernet, SupernetConfig
from nas.strategies.supernet.train import TrainConfig, train_supernet

__all__ = ["Supernet", "SupernetConfig", "TrainConfig", "train_supernet", "Checkpoint", "load_checkpoint"]
