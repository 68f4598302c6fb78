"""The training app: the ``ckconv`` command (train / eval / demo) on Lightning.

Needs the ``app`` extra (``pip install "ckconv[app]"``): lightning, pyyaml, matplotlib,
scikit-learn. Nothing here is imported by the core library.
"""

from ckconv.app.config import Config, ConfigError, list_configs, load_config
from ckconv.app.evaluation import evaluate
from ckconv.app.rates import rate_table, sweep_rates
from ckconv.app.tasks import default_config
from ckconv.app.training import train

__all__ = [
    "Config",
    "ConfigError",
    "default_config",
    "evaluate",
    "list_configs",
    "load_config",
    "rate_table",
    "sweep_rates",
    "train",
]
