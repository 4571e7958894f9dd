"""UniVLA: latent actions learnt from unlabelled episodes (OpenDriveLab/UniVLA, arXiv 2505.06111)."""

from vla.univla.configuration_univla import STAGES, UniVLAConfig
from vla.univla.modeling_univla import UniVLAPolicy

__all__ = ["STAGES", "UniVLAConfig", "UniVLAPolicy"]
