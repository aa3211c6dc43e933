"""Evaluation: test curves with 95% intervals and paired comparisons (`stats`), baselines tuned on
validation functions (`tuning`), and every optimizer tested on the same fresh functions, cached by
what computed them (`curves`)."""

from l2l.evaluation.curves import audit, compare, cost_of, fingerprint, load, rule_from, save, test_curve
from l2l.evaluation.stats import (Curve, Paired, beats_all, mean_ci, paired, recorded_steps, start_of,
                                  t_quantile, unpaired, versus)
from l2l.evaluation.tuning import LR_GRID, matches, probe, same_probe, tune, tuned_rates

__all__ = ["audit", "compare", "cost_of", "fingerprint", "load", "rule_from", "save", "test_curve", "Curve", "Paired", "beats_all",
           "mean_ci", "paired", "recorded_steps", "start_of", "t_quantile", "unpaired", "versus", "LR_GRID", "matches", "probe", "same_probe",
           "tune", "tuned_rates"]
