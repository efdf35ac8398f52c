"""The exporter options (``export --option KEY=VALUE``): every key some exporter reads, and the check for the rest.

Contract: :data:`OPTION_KEYS` holds every option key an exporter under :mod:`katadeploy.export` reads;
:func:`check_options` raises a one-line :class:`~katadeploy.errors.KatadeployError` for any other key, naming the
closest known one. Exporters read options with ``dict.get`` and fall back to defaults, so without this check a
misspelt key (``int8_group_scope=auto``) silently exported the default recipe. ``tests/export/test_options.py``
reads the exporters' source and fails when a key they read is missing here or a key here is read nowhere, so the
list cannot drift. A key is known when any exporter reads it; which target it affects is in that exporter's
contract (the README lists the INT8 ones).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from katadeploy.errors import KatadeployError

OPTION_KEYS = frozenset({
    # every target
    "threads", "device",
    # INT8 calibration and selection (onnx-int8, and through it openvino-int8 int8_source=onnx-qdq, tensorrt-int8)
    "calib_positions", "val_positions", "mixed_precision",
    "int8_methods", "int8_activations", "int8_placement", "int8_per_board", "int8_gpool_float", "int8_float_scopes",
    "int8_smooth_alpha", "int8_bias_correction", "int8_hessian_positions", "int8_act_groups", "int8_group_scopes",
    "int8_group_floor", "int8_group_margin", "int8_group_tail",
    "int8_min_fraction", "int8_fallback_layers", "int8_margin", "int8_fallback_rank", "int8_trials",
    "int8_qat", "int8_qat_steps", "int8_qat_batch", "int8_qat_lr", "int8_qat_seed", "int8_qat_power",
    "int8_qat_range_lr", "int8_qat_start", "int8_qat_positions", "int8_qat_bias_lr",
    # openvino-int8 / tflite-int8 / tensorrt
    "int8_source", "int8_blocks", "recipes", "rank_positions", "extreme_first", "calibration_mode", "mish",
    "max_batch", "compute_capability", "engine_cache", "rebuild", "verbose", "bf16_check",
})  # fmt: skip


def check_options(options: Mapping[str, Any] | None) -> None:
    """Raise for any key of ``options`` no exporter reads (see the module contract)."""
    for key in options or {}:
        if key not in OPTION_KEYS:
            near = difflib.get_close_matches(key, sorted(OPTION_KEYS), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]}?" if near else "; see the README's exporter options"
            raise KatadeployError(f"unknown exporter option {key!r}{hint}")


__all__ = ["OPTION_KEYS", "check_options"]
