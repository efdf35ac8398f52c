"""The PyTorch evaluator: the FP32 reference every other runtime is checked against.

Contract: :class:`TorchEvaluator` wraps :class:`~katadeploy.model.net.KataGoNet` behind the
:class:`~katadeploy.runtime.base.Evaluator` interface; inference runs under ``torch.inference_mode`` on CPU
unless another device is given.
"""

from __future__ import annotations

import numpy as np
import torch

from katadeploy.model.desc import ModelDesc
from katadeploy.model.net import KataGoNet
from katadeploy.runtime.base import RawBatch


class TorchEvaluator:
    output_scale = 1.0

    def __init__(self, model: ModelDesc, device: str = "cpu", threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.model = model
        self.name = f"torch-fp32-{device}"
        self.device = torch.device(device)
        self.net = KataGoNet(model).to(self.device).eval()

    def evaluate(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None = None) -> RawBatch:
        with torch.inference_mode():
            out = self.net(
                torch.from_numpy(np.ascontiguousarray(spatial, dtype=np.float32)).to(self.device),
                torch.from_numpy(np.ascontiguousarray(global_, dtype=np.float32)).to(self.device),
                None
                if meta is None
                else torch.from_numpy(np.ascontiguousarray(meta, dtype=np.float32)).to(self.device),
            )
        return RawBatch(*(t.float().cpu().numpy() for t in out))
