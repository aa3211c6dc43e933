"""Optimizees: families of random functions f(θ), named by a SPEC such as `quadratic:dim=10`.

`base` holds what every family shares (the `Task` a family samples, the registry behind
`make_problem`, seeds); each family has its module: `quadratic`, `mnist`, `cifar` and `neural_art`
(with its frozen feature network in `features`). Importing this package registers them all.
"""

from l2l.problems.base import PROBLEMS, Problem, Task, derive_seed, generator, make_problem, stack_tasks

# in the paper's order, which is the order `make_problem` lists them in
from l2l.problems.quadratic import Quadratic, quadratic_loss  # isort: skip
from l2l.problems.mnist import MNIST  # isort: skip
from l2l.problems.cifar import CIFAR  # isort: skip
from l2l.problems.neural_art import NeuralArt  # isort: skip

__all__ = ["PROBLEMS", "Problem", "Task", "derive_seed", "generator", "make_problem", "stack_tasks", "Quadratic",
           "quadratic_loss", "MNIST", "CIFAR", "NeuralArt"]
