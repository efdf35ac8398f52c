"""ONNX files for KataGo's own ONNX Runtime backend (``cpp/neuralnet/onnxbackend.cpp``).

Contract
--------
* :data:`CONTRACT` is that backend's raw-``.onnx`` I/O contract, transcribed from lightvector/KataGo pull
  request #1171 (head ``a4ac35b3``, 2026-08-06; no tag up to v1.17.2 has the file — the v1.18.1 binary from
  katrain 1.20.0 carries its ``onnxProvider`` strings but was built from a revision, ``92ee95c0``, that is not
  public in the mirror used here). Each rule names its ``file:line``.
* :func:`check_contract` loads an ``.onnx`` file's graph I/O and returns one problem string per breach of
  :data:`CONTRACT` (empty = KataGo's loader would accept it and bind every tensor), after reproducing the
  backend's introspection: case-insensitive substring classification of I/O names, channel counts from dim 1,
  :func:`detect_model_version`, and exact-name binding at run time.
* :func:`write_katago_onnx` turns a katadeploy ``onnx-fp32/fp16/int8`` artifact (inputs ``spatial [N,22,H,W]``,
  ``global [N,19]``, ``meta [N,192]``; outputs ``policy``, ``policy_pass``, ``value``, ``score``,
  ``ownership``) into a file that meets the contract: inputs renamed ``InputSpatial``, ``InputGlobal``
  ``[N,19,1,1]`` and ``InputMeta`` ``[N,192,1,1]`` (flattened inside the graph), outputs exposed through
  ``Identity``/``Reshape`` nodes as ``OutputPolicy``, ``OutputPolicyPass`` ``[N,C,1,1]``, ``OutputValue``,
  ``OutputScoreValue``, ``OutputOwnership``. The graph itself (FP16 islands, QDQ nodes) is untouched. No
  ``InputMask`` is declared: katadeploy graphs take the mask from spatial channel 0, which is what the backend
  feeds as the mask too (onnxbackend.cpp:941-951), and it binds the mask only when the graph declares one
  (onnxbackend.cpp:988-991). A sidecar manifest (target ``katago-onnx-<precision>``) is written next to it.
  Artifacts with ``output_scale != 1`` are refused (the raw path applies no scale).
* :func:`config_keys` gives the ``onnx*`` keys for such a file: node names (the defaults, written out so a
  reader sees what binds) and ``onnxModelVersion`` from the manifest.

Run here against the real backend: KataGo built with ``USE_BACKEND=ONNX`` from that pull request's head
(``katadeploy katago build --backend onnx``; ONNX Runtime C API headers from Debian trixie's
``libonnxruntime-dev`` 1.21 with pip onnxruntime 1.32's library), ``onnxProvider = cpu`` only: its
``kata-raw-nn`` on FP32/FP16/INT8 files equals katadeploy's onnxruntime run of the same file to print precision
(``tests/export/test_katago_onnx.py``). The other execution providers were not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from katadeploy.errors import KatadeployError
from katadeploy.extras import require

SOURCE = (
    "lightvector/KataGo pull/1171 @ a4ac35b392945d6af609420b759a8f2c47170546: cpp/neuralnet/onnxbackend.cpp"
)
SRC = "cpp/neuralnet/onnxbackend.cpp"

NUM_FEATURES_SPATIAL_V7 = 22  # cpp/neuralnet/nninputs.h
NUM_FEATURES_GLOBAL_V7 = 19

#: default tensor names (ComputeContext constructor, onnxbackend.cpp:331-339) and the config key overriding each
#: (onnxbackend.cpp:457-465); KataGo binds tensors by exact name (findNameIndex, onnxbackend.cpp:911-919)
DEFAULT_NAMES = {
    "mask": ("InputMask", "onnxInputMask"),
    "spatial": ("InputSpatial", "onnxInputSpatial"),
    "global": ("InputGlobal", "onnxInputGlobal"),
    "meta": ("InputMeta", "onnxInputMeta"),
    "policy_pass": ("OutputPolicyPass", "onnxOutputPolicyPass"),
    "policy": ("OutputPolicy", "onnxOutputPolicy"),
    "value": ("OutputValue", "onnxOutputValue"),
    "score": ("OutputScoreValue", "onnxOutputMiscvalue"),
    "ownership": ("OutputOwnership", "onnxOutputOwnership"),
}

CONTRACT: dict[str, Any] = {
    "source": SOURCE,
    "raw_onnx_when": f"model file name ends with .onnx ({SRC}:251)",
    "dtype": f"float32 tensors on every input and output (Ort::Value::CreateTensor<float>, {SRC}:963-1003; "
    f"GetTensorData<float>, {SRC}:1051-1055)",
    "inputs": {
        "mask": {
            "rank": 4,
            "shape": ["N", 1, "H", "W"],
            "required": False,
            "where": f"{SRC}:963 (bound only if declared, {SRC}:988-991)",
        },
        "spatial": {"rank": 4, "shape": ["N", "C", "H", "W"], "required": True, "where": f"{SRC}:969"},
        "global": {"rank": 4, "shape": ["N", "C", 1, 1], "required": True, "where": f"{SRC}:975"},
        "meta": {"rank": 4, "shape": ["N", "C", 1, 1], "required": False, "where": f"{SRC}:999"},
    },
    "outputs": {
        "policy_pass": {"where": f"{SRC}:1072-1093 ([N,C,1,1] or [N,C], read flat)"},
        "policy": {"where": f"{SRC}:1072-1093 ([N,C,H,W])"},
        "value": {"channels": 3, "where": f"{SRC}:1096-1103 ([N,3] logits)"},
        "score": {"where": f"{SRC}:1105-1147 ([N,C], C>=6 for version>=9, >=4 for 8)"},
        "ownership": {"channels": 1, "where": f"{SRC}:1149-1154 ([N,1,H,W])"},
    },
    "introspection": f"case-insensitive substring of names: mask/spatial/global/meta, policypass before policy, "
    f"scorevalue|miscvalue before value, ownership; channels = dim 1 ({SRC}:118-206)",
    "model_version": f"22+19 inputs: score 6 & policy 2 -> 15, score 6 & policy 1 -> 10, score 4 -> 8, else the "
    f"newest; onnxModelVersion overrides ({SRC}:55-73, {SRC}:466-470)",
    "no_use_fp16": f"useFP16 = true is refused; precision is the execution provider's ({SRC}:356-363)",
    "providers": ["cpu", "openvino", "cuda", "tensorrt", "migraphx", "coreml"],
    "providers_where": f"{SRC}:365-371",
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: list[int | str | None]
    dtype: str


def _graph_io(path: Path) -> tuple[list[TensorInfo], list[TensorInfo]]:
    onnx = require("onnx", "onnx")
    model = onnx.load(str(path), load_external_data=False)

    def info(vi: Any) -> TensorInfo:
        t = vi.type.tensor_type
        dims: list[int | str | None] = []
        for d in t.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        return TensorInfo(vi.name, dims, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name)

    inits = {i.name for i in model.graph.initializer}
    ins = [info(v) for v in model.graph.input if v.name not in inits]
    return ins, [info(v) for v in model.graph.output]


def classify_input(name: str) -> str | None:
    low = name.lower()
    for role in ("mask", "spatial", "global", "meta"):
        if role in low:
            return role
    return None


def classify_output(name: str) -> str | None:
    low = name.lower()
    if "policypass" in low:
        return "policy_pass"
    if "policy" in low:
        return "policy"
    if "scorevalue" in low or "miscvalue" in low:
        return "score"
    if "value" in low:
        return "value"
    if "ownership" in low:
        return "ownership"
    return None


def detect_model_version(spatial: int, global_: int, policy: int, score: int, newest: int = 16) -> int:
    """``detectModelVersion`` of onnxbackend.cpp:55-73 (``newest`` stands for defaultModelVersion)."""
    if spatial == NUM_FEATURES_SPATIAL_V7 and global_ == NUM_FEATURES_GLOBAL_V7:
        if score == 6 and policy == 2:
            return 15
        if score == 6 and policy == 1:
            return 10
        if score == 4:
            return 8
    return newest


def check_contract(
    path: str | Path, names: dict[str, str] | None = None, nn_x: int = 19, nn_y: int = 19
) -> list[str]:
    """Problems (one line each) that keep KataGo's ONNX backend from loading/binding ``path``."""
    names = {role: (names or {}).get(key, default) for role, (default, key) in DEFAULT_NAMES.items()}
    ins, outs = _graph_io(Path(path))
    problems: list[str] = []
    chans: dict[str, int] = {}
    for t in ins:
        role = classify_input(t.name)
        spec = CONTRACT["inputs"].get(role) if role else None
        if spec is None:
            problems.append(f"input {t.name!r}: not recognised (name must contain mask/spatial/global/meta)")
            continue
        if t.name != names[role]:
            problems.append(f"input {t.name!r}: KataGo binds {role} by the exact name {names[role]!r}")
        if len(t.shape) != spec["rank"]:
            problems.append(
                f"input {t.name!r}: rank {len(t.shape)}, KataGo feeds {spec['shape']} ({spec['where']})"
            )
            continue
        if not isinstance(t.shape[1], int):
            problems.append(f"input {t.name!r}: dim 1 must be static (KataGo reads channels from it)")
        else:
            chans[role] = t.shape[1]
        want_hw = (nn_y, nn_x) if role in ("mask", "spatial") else (1, 1)
        if tuple(t.shape[2:]) != want_hw:
            problems.append(f"input {t.name!r}: dims 2-3 {t.shape[2:]} != {list(want_hw)} ({spec['where']})")
        if role == "mask" and t.shape[1] != 1:
            problems.append(f"input {t.name!r}: the mask has 1 channel")
        if t.dtype != "float32":
            problems.append(f"input {t.name!r}: {t.dtype}, KataGo feeds float32")
    for role in ("spatial", "global"):
        if not any(classify_input(t.name) == role for t in ins):
            problems.append(f"missing the {role} input {names[role]!r}")
    for t in outs:
        role = classify_output(t.name)
        if role is None:
            continue
        if t.name != names[role]:
            problems.append(f"output {t.name!r}: KataGo reads {role} by the exact name {names[role]!r}")
        if len(t.shape) < 2 or not isinstance(t.shape[1], int):
            problems.append(f"output {t.name!r}: dim 1 must be static (channels)")
        else:
            chans.setdefault("out_" + role, t.shape[1])
        if t.dtype != "float32":
            problems.append(f"output {t.name!r}: {t.dtype}, KataGo reads float32")
        spec = CONTRACT["outputs"][role]
        if "channels" in spec and len(t.shape) >= 2 and t.shape[1] != spec["channels"]:
            problems.append(f"output {t.name!r}: {t.shape[1]} channels, KataGo expects {spec['channels']}")
        if role in ("policy", "ownership") and tuple(t.shape[2:]) != (nn_y, nn_x):
            problems.append(f"output {t.name!r}: spatial dims {t.shape[2:]} != {[nn_y, nn_x]}")
    for role in ("policy_pass", "policy", "value", "score", "ownership"):
        if not any(classify_output(t.name) == role for t in outs):
            problems.append(f"missing output {names[role]!r} (introspection needs a name containing it)")
    return problems


def introspect(path: str | Path) -> dict[str, int]:
    """The channel counts and model version KataGo's loader would derive from ``path``."""
    ins, outs = _graph_io(Path(path))
    got: dict[str, int] = {}
    for t in ins:
        role = classify_input(t.name)
        if role in ("spatial", "global", "meta") and len(t.shape) >= 2 and isinstance(t.shape[1], int):
            got[role] = t.shape[1]
    for t in outs:
        role = classify_output(t.name)
        if role and role != "policy_pass" and len(t.shape) >= 2 and isinstance(t.shape[1], int):
            got[role] = t.shape[1]
    got["model_version"] = detect_model_version(
        got.get("spatial", 0), got.get("global", 0), got.get("policy", 0), got.get("score", 0)
    )
    return got


# ----------------------------------------------------------------------------------------------------------
# Writer


_KD_INPUTS = {"spatial": "spatial", "global": "global", "meta": "meta"}
_KD_OUTPUTS = ("policy", "policy_pass", "value", "score", "ownership")


def katago_onnx_path(artifact: str | Path) -> Path:
    p = Path(artifact)
    return p.with_name(p.name.removesuffix(".onnx") + ".katago.onnx")


def write_katago_onnx(artifact: str | Path, out: str | Path | None = None) -> Path:
    """Write the contract-conforming copy of a katadeploy ONNX artifact (see the module contract)."""
    onnx = require("onnx", "onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from katadeploy.artifact import TensorSpec, read_manifest, write_manifest

    src = Path(artifact)
    if src.suffix != ".onnx":
        raise KatadeployError(f"{src}: KataGo's ONNX backend loads .onnx files; this is not one")
    manifest = read_manifest(src)
    if manifest.format != "onnx":
        raise KatadeployError(f"{src}: a {manifest.format} artifact, not ONNX")
    if float(manifest.output_scale) != 1.0:
        raise KatadeployError(
            f"{src}: output_scale {manifest.output_scale} (KataGo's raw .onnx path scales nothing)"
        )
    dst = Path(out) if out is not None else katago_onnx_path(src)
    model = onnx.load(str(src))
    g = model.graph
    have_in = {v.name: v for v in g.input}
    have_out = {v.name: v for v in g.output}
    missing = [n for n in _KD_OUTPUTS if n not in have_out] + [
        n for n in ("spatial", "global") if n not in have_in
    ]
    if missing:
        raise KatadeployError(f"{src}: not a katadeploy ONNX graph (no {', '.join(missing)})")

    new_inputs = []
    new_nodes = []
    for vi in g.input:
        dims = [d for d in vi.type.tensor_type.shape.dim]
        if vi.name == "spatial":
            new_name = DEFAULT_NAMES["spatial"][0]
            _rename_uses(g, "spatial", new_name)
            vi.name = new_name
            new_inputs.append(vi)
        elif vi.name in ("global", "meta"):
            role = vi.name
            new_name = DEFAULT_NAMES[role][0]
            shape = [
                "N" if d.HasField("dim_param") or not d.HasField("dim_value") else d.dim_value for d in dims
            ]
            shape = [shape[0], shape[1], 1, 1]
            new_inputs.append(helper.make_tensor_value_info(new_name, TensorProto.FLOAT, shape))
            new_nodes.append(
                helper.make_node("Flatten", [new_name], [role], name=f"katago_io/{role}_flatten", axis=1)
            )
        else:
            new_inputs.append(vi)
    new_outputs = []
    for vi in g.output:
        if vi.name not in _KD_OUTPUTS:
            new_outputs.append(vi)
            continue
        target = DEFAULT_NAMES[vi.name][0]
        dims = [d for d in vi.type.tensor_type.shape.dim]
        shape = ["N" if not d.HasField("dim_value") else d.dim_value for d in dims]
        if vi.name == "policy_pass":
            c = shape[1]
            const = "katago_io/policy_pass_shape"
            g.initializer.append(numpy_helper.from_array(np.array([-1, c, 1, 1], dtype=np.int64), const))
            new_nodes.append(
                helper.make_node("Reshape", [vi.name, const], [target], name="katago_io/policy_pass")
            )
            shape = [shape[0], c, 1, 1]
        else:
            new_nodes.append(helper.make_node("Identity", [vi.name], [target], name=f"katago_io/{vi.name}"))
        new_outputs.append(helper.make_tensor_value_info(target, TensorProto.FLOAT, shape))
    del g.input[:]
    g.input.extend(new_inputs)
    del g.output[:]
    g.output.extend(new_outputs)
    # the Flatten nodes produce the old input names and must come first (graph nodes are topologically sorted)
    old = list(g.node)
    del g.node[:]
    g.node.extend(
        [n for n in new_nodes if n.op_type == "Flatten"]
        + old
        + [n for n in new_nodes if n.op_type != "Flatten"]
    )
    onnx.checker.check_model(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(dst)

    problems = check_contract(dst, nn_x=manifest.nn_x, nn_y=manifest.nn_y)
    if problems:
        raise KatadeployError(f"{dst}: still breaks KataGo's ONNX contract: {problems[0]}")
    ins, outs = _graph_io(dst)
    manifest.target = f"katago-onnx-{manifest.precision}"
    manifest.artifact = dst.name
    manifest.inputs = [TensorSpec(t.name, [d if d is not None else "N" for d in t.shape]) for t in ins]
    manifest.outputs = [TensorSpec(t.name, [d if d is not None else "N" for d in t.shape]) for t in outs]
    manifest.details = dict(manifest.details)
    manifest.details["katago_onnx"] = {"from": src.name, "contract": SOURCE, "introspected": introspect(dst)}
    write_manifest(manifest, dst)
    return dst


def _rename_uses(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def config_keys(path: str | Path) -> dict[str, Any]:
    """The ``onnx*`` config keys for a contract-conforming file (node names + ``onnxModelVersion``)."""
    ins, outs = _graph_io(Path(path))
    keys: dict[str, Any] = {}
    for t in ins:
        role = classify_input(t.name)
        if role:
            keys[DEFAULT_NAMES[role][1]] = t.name
    for t in outs:
        role = classify_output(t.name)
        if role:
            keys[DEFAULT_NAMES[role][1]] = t.name
    version = None
    try:
        from katadeploy.artifact import read_manifest

        version = read_manifest(path).source.get("model_version")
    except KatadeployError:
        pass
    if version is not None:
        keys["onnxModelVersion"] = int(version)
    return keys
