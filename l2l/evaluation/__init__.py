"""Evaluation: test curves with 95% intervals (`stats`), baselines tuned on validation functions
(`tuning`), and every optimizer tested on the same fresh functions, cached by what computed them
(`curves`)."""

from l2l.evaluation.curves import compare, fingerprint, save, test_curve
from l2l.evaluation.stats import Curve, mean_ci, t_quantile
from l2l.evaluation.tuning import LR_GRID, tune, tuned_rates

__all__ = ["compare", "fingerprint", "save", "test_curve", "Curve", "mean_ci", "t_quantile", "LR_GRID",
           "tune", "tuned_rates"]
