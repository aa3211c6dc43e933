"""l2l: learning to learn by gradient descent by gradient descent (Andrychowicz et al., 2016)."""

__version__ = "0.1.0"

__all__ = ["LearnedOptimizer"]


def __getattr__(name):
    # `l2l.LearnedOptimizer` (`l2l.optim`), imported on first use so that `import l2l` stays light
    if name == "LearnedOptimizer":
        from l2l.optim import LearnedOptimizer

        return LearnedOptimizer
    raise AttributeError(f"module 'l2l' has no attribute {name!r}")
