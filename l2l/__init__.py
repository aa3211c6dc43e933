"""l2l: learning to learn by gradient descent by gradient descent (Andrychowicz et al., 2016)."""

__version__ = "0.1.0"
