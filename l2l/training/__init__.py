"""Meta-training the learned optimizers: the recipe (`config`), one meta-update at a time
(`unroll`: truncated BPTT, eager or as a captured CUDA graph), whole runs with validation and early
stopping (`meta_train`), several at once in one process (`population`), the files that hold them
(`checkpoint`), and random search over the meta-learning rate (`sweep`)."""

from l2l.training.checkpoint import load_checkpoint, optimizer_from, save_checkpoint
from l2l.training.config import PLATEAU_HALVINGS, TrainConfig
from l2l.training.meta_train import load_or_train, meta_train, validate
from l2l.training.population import check_population, train_population
from l2l.training.sweep import draw_trials, sweep, trial_path
from l2l.training.unroll import GraphedUnroll, meta_updates, train_epoch, truncate, unroll

__all__ = ["load_checkpoint", "optimizer_from", "save_checkpoint", "PLATEAU_HALVINGS", "TrainConfig", "load_or_train",
           "meta_train", "validate", "train_population", "check_population", "draw_trials", "sweep", "trial_path", "GraphedUnroll", "meta_updates", "train_epoch", "truncate", "unroll"]
