"""rlmaml: policy-gradient MAML for meta-reinforcement learning on PyTorch and Gymnasium.

Importing the package registers its task families in the Gymnasium namespace ``rlmaml``.
"""

from rlmaml import envs as envs  # registers rlmaml/... ids with Gymnasium
from rlmaml.config import TrainConfig
from rlmaml.policy import GaussianMLPPolicy
from rlmaml.sampling import TaskSampler

__version__ = "0.1.0"
__all__ = ["GaussianMLPPolicy", "TaskSampler", "TrainConfig", "__version__", "envs"]
