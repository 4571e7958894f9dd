"""The Hub mixin every trained model here saves and loads with (policies, world models).

huggingface_hub's ``PyTorchModelHubMixin`` writes ``config.json`` + ``model.safetensors`` and loads them
from a folder or a Hub id; for a local folder it also ``print``s "Loading weights from local directory"
on every load, which floods the terminal of an eval that loads a policy per episode. This subclass
loads local folders the same way (safetensors only), silently, and leaves Hub ids to the mixin.
"""

from __future__ import annotations

import os
from typing import Any

from huggingface_hub import PyTorchModelHubMixin, constants


class HubMixin(PyTorchModelHubMixin):
    """``PyTorchModelHubMixin`` without the print on local loads."""

    @classmethod
    def _from_pretrained(cls, *, model_id: str, map_location: str = "cpu", strict: bool = False, **kwargs: Any):
        if not os.path.isdir(model_id):
            return super()._from_pretrained(model_id=model_id, map_location=map_location, strict=strict, **kwargs)
        for hub_argument in ("revision", "cache_dir", "force_download", "local_files_only", "token"):
            kwargs.pop(hub_argument, None)
        model = cls(**kwargs)
        model_file = os.path.join(model_id, constants.SAFETENSORS_SINGLE_FILE)
        return cls._load_as_safetensor(model, model_file, map_location, strict)
