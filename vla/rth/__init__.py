"""RT-H: language motions between instruction and action, corrected in chat (https://arxiv.org/abs/2403.01823)."""

from vla.rth.configuration_rth import RTHConfig
from vla.rth.data_rth import MissingMotionsError
from vla.rth.modeling_rth import Intervention, RTHPolicy

__all__ = ["Intervention", "MissingMotionsError", "RTHConfig", "RTHPolicy"]
