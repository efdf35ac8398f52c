#!/usr/bin/env python3
"""Validate and benchmark katadeploy's GPU targets on a CUDA machine; one run, one JSON + Markdown report.

Contract: ``python3 scripts/gpu_check.py NET [NET ...] --out DIR [--positions oracle.jsonl] [--calib calib.npz]
[--time-budget S]`` (run from the repository root or with ``PYTHONPATH`` pointing at it). For every net (a model
file) and every target it

- builds the artifact (``tensorrt-fp16``/``tensorrt-int8`` engines; ``onnx-fp32``/``onnx-fp16`` run with
  onnxruntime's CUDAExecutionProvider when ``onnxruntime`` has it; torch CUDA FP32 and FP16-autocast baselines
  need no artifact),
- validates it against the PyTorch FP32 reference (CPU) on the positions (default: the 80 bundled oracle
  positions) with :func:`katadeploy.validate.metrics.compare` and KataGo's testgpuerror limits for its precision,
- benchmarks evaluations per second at batch 1, 8, 32, 64, 128, 256: ``device`` (inputs already on the GPU,
  outputs left there) and ``e2e`` (numpy in, float32 numpy out), each after warm-up, timed over CUDA-synchronised
  loops.

Every (net, target) runs in its own try/except: a failure is recorded (message and traceback tail) and the run
goes on. Progress goes to stdout with flush. After ``--time-budget`` seconds no new work starts. ``DIR`` gets
``gpu_check.json`` and ``gpu_check.md``, rewritten after every item, so a run cut short still leaves its results.
INT8 needs calibration data: ``--calib`` (a ``katadeploy data calib`` .npz) or, without it, the default built
from the bundled games (needs sgfmill). Works with torch 2.11 and later.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

TARGETS = ("torch-fp32", "torch-fp16", "tensorrt-fp16", "tensorrt-int8", "ort-cuda-fp32", "ort-cuda-fp16")
PRECISION = {
    "torch-fp32": "fp32",
    "torch-fp16": "fp16",
    "tensorrt-fp16": "fp16",
    "tensorrt-int8": "int8",
    "ort-cuda-fp32": "fp32",
    "ort-cuda-fp16": "fp16",
}
BATCHES = (1, 8, 32, 64, 128, 256)
RTX_AOT_FALLBACK = "SM80"  # TensorRT-RTX target tried, forced, on a GPU it does not list (e.g. H100 = SM90)


def precision_of(target: str) -> str:
    return PRECISION[target.split("@")[0]]


OUTPUTS = ("policy", "policy_pass", "value", "score", "ownership")


def log(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -------------------------------------------------------------------------------------------- evaluators
class TorchCudaEvaluator:
    """KataGoNet on the GPU: FP32 (TF32 off) or FP16 autocast."""

    output_scale = 1.0

    def __init__(self, model: Any, fp16: bool):
        from katadeploy.model.net import KataGoNet

        self.name = "torch-cuda-fp16-autocast" if fp16 else "torch-cuda-fp32"
        self.fp16 = fp16
        self.net = KataGoNet(model).cuda().eval()

    def run_torch(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.fp16):
            return tuple(self.net(*inputs) if len(inputs) > 2 else self.net(inputs[0], inputs[1], None))

    def evaluate(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None = None):
        from katadeploy.runtime.base import RawBatch

        ins = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).cuda() for a in (spatial, global_)]
        if meta is not None:
            ins.append(torch.from_numpy(np.ascontiguousarray(meta, dtype=np.float32)).cuda())
        outs = self.run_torch(*ins)
        return RawBatch(*(o.float().cpu().numpy() for o in outs))


class OrtCudaEvaluator:
    """An ONNX artifact in onnxruntime's CUDAExecutionProvider."""

    def __init__(self, path: Path, manifest: Any):
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError(
                f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (install onnxruntime-gpu)"
            )
        if hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()
            except Exception as exc:  # noqa: BLE001 - best effort; the session below says what is missing
                log(f"onnxruntime.preload_dlls failed: {exc}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(path), opts, providers=[("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
        )
        if self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise RuntimeError(
                f"onnxruntime fell back to {self.session.get_providers()} (CUDA EP did not load)"
            )
        self.name = f"ort-cuda-{manifest.precision}"
        self.output_scale = float(manifest.output_scale)
        self.inputs = [
            (i.name, np.float16 if "float16" in i.type else np.float32) for i in self.session.get_inputs()
        ]
        names = [o.name for o in self.session.get_outputs()]
        self.outputs = [n for n in OUTPUTS if n in names] if all(n in names for n in OUTPUTS) else names

    def evaluate(self, spatial: np.ndarray, global_: np.ndarray, meta: np.ndarray | None = None):
        from katadeploy.runtime.base import RawBatch

        arrays = [spatial, global_, meta][: len(self.inputs)]
        feed = {n: np.ascontiguousarray(a, dtype=t) for (n, t), a in zip(self.inputs, arrays)}
        outs = self.session.run(self.outputs, feed)
        return RawBatch(*(np.asarray(o, dtype=np.float32) for o in outs))

    def run_torch(self, *inputs: torch.Tensor) -> list[Any]:
        io = self.session.io_binding()
        for (name, dt), t in zip(self.inputs, inputs):
            t = t.to(torch.float16 if dt == np.float16 else torch.float32).contiguous()
            io.bind_input(name, "cuda", 0, dt, list(t.shape), t.data_ptr())
        for name in self.outputs:
            io.bind_output(name, "cuda")
        self.session.run_with_iobinding(io)
        return io.get_outputs()


# ------------------------------------------------------------------------------------------------ helpers
def tail(text: str, n: int = 2500) -> str:
    return text if len(text) <= n else "…" + text[-n:]


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env["gpu"] = p.name
        env["compute_capability"] = f"{p.major}.{p.minor}"
        env["gpu_memory_gib"] = round(p.total_memory / 2**30, 1)
    import importlib.util

    # what the exporters need besides TensorRT: onnx + onnxruntime (all ONNX), onnxconverter_common (FP16),
    # sgfmill (katadeploy.data.calibration imports it, so INT8 needs it even with --calib)
    env["modules"] = {
        m: importlib.util.find_spec(m) is not None
        for m in ("onnx", "onnxruntime", "onnxconverter_common", "sgfmill")
    }
    try:
        from katadeploy.runtime.tensorrt_env import load_tensorrt

        lib = load_tensorrt()
        env["tensorrt"] = {"flavour": lib.flavour, "version": lib.version, "module": lib.module.__name__}
    except Exception as exc:  # noqa: BLE001
        env["tensorrt"] = f"unavailable: {exc}"
    try:
        import onnxruntime as ort

        env["onnxruntime"] = {"version": ort.__version__, "providers": ort.get_available_providers()}
    except Exception as exc:  # noqa: BLE001
        env["onnxruntime"] = f"unavailable: {exc}"
    return env


def layer_summary(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Count engine layers by type and by the precision of their outputs (TensorRT's inspector strings)."""
    from collections import Counter

    by_precision: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for layer in layers:
        fmt = " ".join(
            str(o.get("Format/Datatype", "")) for o in layer.get("Outputs", []) if isinstance(o, dict)
        )
        low = fmt.lower()
        kind = (
            "int8" if "int8" in low
            else "fp16" if ("half" in low or "fp16" in low)
            else "fp32" if ("float" in low or "fp32" in low)
            else "unknown"
        )  # fmt: skip
        by_precision[kind] += 1
        by_type[str(layer.get("LayerType", "?"))] += 1
    return {
        "layers": len(layers),
        "by_output_precision": dict(by_precision),
        "by_type": dict(by_type.most_common(12)),
        "first": [str(layer.get("Name", ""))[:120] for layer in layers[:8]],
    }


def bench_inputs(vset: Any, batch: int) -> list[np.ndarray]:
    idx = np.arange(batch) % len(vset)
    arrays = [vset.spatial[idx], vset.global_[idx]]
    if vset.meta is not None:
        arrays.append(vset.meta[idx])
    return [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]


def timed(fn: Any, seconds: float, min_iters: int = 5) -> tuple[float, int]:
    """Seconds per call of ``fn`` (CUDA-synchronised), after warm-up."""
    torch.cuda.synchronize()
    t_warm = time.perf_counter()
    warm = 0
    while warm < 3 or (time.perf_counter() - t_warm < 0.2 and warm < 50):
        fn()
        warm += 1
    torch.cuda.synchronize()
    iters = 0
    t0 = time.perf_counter()
    while True:
        fn()
        iters += 1
        if iters >= min_iters and iters % 5 == 0:
            torch.cuda.synchronize()
            if time.perf_counter() - t0 >= seconds:
                break
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters, iters


def benchmark(ev: Any, vset: Any, batches: list[int], seconds: float, deadline: float) -> dict[str, Any]:
    out: dict[str, Any] = {"device": {}, "e2e": {}, "iters": {}}
    for b in batches:
        if time.monotonic() > deadline:
            out["stopped"] = f"time budget reached before batch {b}"
            break
        arrays = bench_inputs(vset, b)
        try:
            dev = [torch.from_numpy(a).cuda() for a in arrays]
            if hasattr(ev, "run_torch") and (getattr(ev, "max_batch", None) or b) >= b:
                per, n = timed(lambda dev=dev: ev.run_torch(*dev), seconds)
                out["device"][str(b)] = round(b / per, 1)
                out["iters"][f"device_{b}"] = n
            meta = arrays[2] if len(arrays) > 2 else None
            per, n = timed(lambda a=arrays, m=meta: ev.evaluate(a[0], a[1], m), seconds)
            out["e2e"][str(b)] = round(b / per, 1)
            out["iters"][f"e2e_{b}"] = n
        except Exception as exc:  # noqa: BLE001
            out.setdefault("errors", {})[str(b)] = f"{type(exc).__name__}: {exc}"
            log(f"    batch {b}: {type(exc).__name__}: {exc}")
    return out


# ---------------------------------------------------------------------------------------------- the work
class Check:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.start = time.monotonic()
        self.deadline = self.start + args.time_budget
        self.results: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "environment": environment(),
            "nets": {},
            "items": [],
        }
        self._nets: dict[str, Any] = {}
        self.calib = args.calib

    # -- per-net state (reference outputs are computed once) --
    def net(self, spec: str) -> dict[str, Any]:
        if spec in self._nets:
            return self._nets[spec]
        from katadeploy.hashing import sha256_file
        from katadeploy.model.format import load_model
        from katadeploy.runtime.torch_runtime import TorchEvaluator
        from katadeploy.validate.positions import evaluate, load_validation_set

        path = Path(spec)
        model = load_model(path)
        vset = load_validation_set(self.args.positions, model)
        t0 = time.perf_counter()
        ref = evaluate(TorchEvaluator(model, device="cpu"), vset, batch=16, progress=False)
        info = {"path": path, "model": model, "vset": vset, "ref": ref}
        self._nets[spec] = info
        self.results["nets"][model.name] = {
            "file": path.name,
            "sha256": sha256_file(path),
            "model_version": model.version,
            "positions": len(vset),
            "reference": "torch FP32 on CPU",
            "reference_seconds": round(time.perf_counter() - t0, 2),
        }
        return info

    def export(self, net: dict[str, Any], target: str, item: dict[str, Any]) -> Path:
        from katadeploy.errors import KatadeployError

        options: dict[str, Any] = {}
        if target.startswith("tensorrt"):
            options = {
                "max_batch": max(self.args.batches),
                "opt_level": self.args.opt_level,
                "detailed_layers": True,
            }
            if "@" in target:  # TensorRT-RTX ahead-of-time build for a named target, forced onto this GPU
                target, options["compute_capability"] = target.split("@")
                item["variant"] = f"TensorRT-RTX AOT build for {options['compute_capability']}, run forced"
                return self.export_with(net, target, options, sub=options["compute_capability"])
            try:
                return self.export_with(net, target, options)
            except KatadeployError as exc:
                if "does not support" not in str(exc):
                    raise
                # TensorRT-RTX does not list this GPU: record katadeploy's refusal, then let TensorRT-RTX try
                item["refused"] = str(exc)
                log(f"    {exc}\n    trying anyway (allow_unsupported_gpu) to record what TensorRT-RTX does")
                options["allow_unsupported_gpu"] = True
        return self.export_with(net, target, options)

    def export_with(self, net: dict[str, Any], target: str, options: dict[str, Any], sub: str = "") -> Path:
        from katadeploy.export.request import export_artifact

        calib = None
        if target.endswith("int8"):
            for key in ("int8_methods", "calib_positions", "val_positions"):
                value = getattr(self.args, key)
                if value is not None:
                    options.setdefault(key, value)
            calib = self.calib
            if calib is None:
                from katadeploy.data.calibration import default_calibration_path

                calib = self.calib = str(default_calibration_path(19, progress=True))
        out = self.work / net["model"].name / sub if sub else self.work / net["model"].name
        return export_artifact(
            str(net["path"]),
            target,
            out,
            calib=calib,
            batch=self.args.opt_batch,
            progress=True,
            options=options,
        )

    def evaluator(self, net: dict[str, Any], target: str, item: dict[str, Any]) -> Any:
        from katadeploy.artifact import read_manifest

        if target in ("torch-fp32", "torch-fp16"):
            return TorchCudaEvaluator(net["model"], fp16=target == "torch-fp16")
        artifact_target = {"ort-cuda-fp32": "onnx-fp32", "ort-cuda-fp16": "onnx-fp16"}.get(target, target)
        if artifact_target.startswith("onnx"):
            import onnxruntime as ort

            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError(
                    f"onnxruntime {ort.__version__} has no CUDAExecutionProvider ({ort.get_available_providers()})"
                )
        t0 = time.perf_counter()
        path = self.export(net, artifact_target, item)
        item["export_seconds"] = round(time.perf_counter() - t0, 2)
        item["artifact"] = path.name
        item["artifact_bytes"] = path.stat().st_size if path.is_file() else None
        manifest = read_manifest(path)
        item["details"] = manifest.details
        if artifact_target.startswith("onnx"):
            return OrtCudaEvaluator(path, manifest)
        from katadeploy.runtime.loader import open_evaluator

        t0 = time.perf_counter()
        rtx = (manifest.details.get("tensorrt") or {}).get("flavour") == "tensorrt-rtx"
        opts: dict[str, Any] = {"rtx_specialization": "eager"} if rtx else {}
        if "@" in target:
            opts["allow_mismatch"] = True
        ev = open_evaluator(path, **opts)
        item["load_seconds"] = round(time.perf_counter() - t0, 2)
        try:
            item["layers"] = layer_summary(ev.layers())
        except Exception as exc:  # noqa: BLE001 - informational only
            item["layers"] = f"unavailable: {type(exc).__name__}: {exc}"
        return ev

    def validate(self, net: dict[str, Any], ev: Any, precision: str) -> dict[str, Any]:
        from katadeploy.validate.metrics import compare
        from katadeploy.validate.positions import evaluate

        vset = net["vset"]
        test = evaluate(ev, vset, batch=16, progress=False)
        metrics = compare(
            net["ref"],
            test,
            vset.legal,
            net["model"],
            test_scale=float(getattr(ev, "output_scale", 1.0)),
            no_result_allowed=vset.no_result_allowed,
            on_board=vset.on_board,
        )
        return metrics.to_json(precision)

    def run_item(self, spec: str, target: str) -> None:
        item: dict[str, Any] = {"net": Path(spec).name, "target": target, "precision": precision_of(target)}
        self.results["items"].append(item)
        if time.monotonic() > self.deadline:
            item["status"] = "skipped"
            item["error"] = "time budget reached"
            return
        t0 = time.perf_counter()
        log(f"{target} on {Path(spec).name}")
        try:
            net = self.net(spec)
            item["net"] = net["model"].name
            ev = self.evaluator(net, target, item)
            item["evaluator"] = getattr(ev, "name", target)
            v = self.validate(net, ev, precision_of(target))
            item["validation"] = v
            item["passed"] = v.get("passed")
            w = v.get("worst", {})
            log(
                f"    validation: {'PASS' if v.get('passed') else 'FAIL'} (worst {w.get('metric')} {w.get('stat')} "
                f"at {w.get('ratio', float('nan')):.2f}x its limit, top-1 agreement {v.get('top1_agreement', 0):.3f})"
            )
            if not self.args.no_bench:
                item["bench"] = benchmark(
                    ev, net["vset"], self.args.batches, self.args.bench_seconds, self.deadline
                )
                log(f"    evals/s device {item['bench']['device']} e2e {item['bench']['e2e']}")
            item["status"] = "ok"
        except Exception as exc:  # noqa: BLE001
            item["status"] = "error"
            item["error"] = f"{type(exc).__name__}: {exc}"
            item["traceback"] = tail(traceback.format_exc())
            log(f"    ERROR {item['error']}")
        finally:
            item["seconds"] = round(time.perf_counter() - t0, 2)
            torch.cuda.empty_cache()
            self.write()

    def targets(self) -> list[str]:
        """The requested targets, plus forced TensorRT-RTX AOT variants when TensorRT-RTX does not list this
        GPU (so the report shows what it does there instead of only katadeploy's refusal)."""
        targets = list(self.args.targets)
        trt = self.results["environment"].get("tensorrt")
        if isinstance(trt, dict) and trt.get("flavour") == "tensorrt-rtx" and self.args.rtx_aot:
            from katadeploy.runtime.tensorrt_env import load_tensorrt, rtx_targets

            sm = "SM" + str(self.results["environment"].get("compute_capability", "")).replace(".", "")
            if sm not in rtx_targets(load_tensorrt().module):
                for t in self.args.targets:
                    if t.startswith("tensorrt"):
                        targets.insert(targets.index(t) + 1, f"{t}@{self.args.rtx_aot}")
        return targets

    def run(self) -> None:
        for target in self.targets():
            for spec in self.args.nets:
                self.run_item(spec, target)
        self.results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.results["elapsed_seconds"] = round(time.monotonic() - self.start, 1)
        self.write()

    # -- reports --
    def write(self) -> None:
        self.results["elapsed_seconds"] = round(time.monotonic() - self.start, 1)
        text = json.dumps(self.results, indent=1, default=str, allow_nan=True)
        tmp = self.out / "gpu_check.json.tmp"
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(self.out / "gpu_check.json")
        (self.out / "gpu_check.md").write_text(markdown(self.results), encoding="utf-8")


def _fmt(x: Any, scale: float = 1.0, digits: int = 3) -> str:
    if x is None:
        return "-"
    try:
        v = float(x) * scale
    except (TypeError, ValueError):
        return str(x)
    return "inf" if math.isinf(v) else f"{v:.{digits}g}"


def _layers(summary: Any) -> str:
    if not isinstance(summary, dict):
        return "-"
    counts = summary.get("by_output_precision", {})
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def markdown(res: dict[str, Any]) -> str:
    env = res["environment"]
    lines = [
        "# katadeploy GPU check",
        "",
        f"- GPU: {env.get('gpu', '?')} (compute capability {env.get('compute_capability', '?')}), "
        f"torch {env.get('torch')} (CUDA {env.get('torch_cuda')}), Python {env.get('python')}",
        f"- TensorRT: {env.get('tensorrt')}",
        f"- onnxruntime: {env.get('onnxruntime')}",
        f"- importable: {env.get('modules')}",
        f"- started {res.get('started')}, elapsed {res.get('elapsed_seconds')} s",
        "",
        "## Validation against the PyTorch FP32 reference (KataGo testgpuerror limits)",
        "",
        "| net | target | status | verdict | worst (x limit) | winrate p99 % | lead p99 | top-policy p99 % "
        "| KL p99 | top-1 | build s | engine layers by output precision |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for it in res["items"]:
        v = it.get("validation") or {}
        m = v.get("metrics", {})
        w = v.get("worst") or {}
        verdict = "-" if not v else ("PASS" if v.get("passed") else "FAIL")
        status = it.get("status", "running")
        if status != "ok" and it.get("error"):
            status = f"{status}: {it['error'][:160]}".replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {it['net']} | {it['target']} | {status} | {verdict} | "
            f"{w.get('metric', '-')} {w.get('stat', '')} {_fmt(w.get('ratio'))} | "
            f"{_fmt(m.get('winrate', {}).get('p99'), 100)} | {_fmt(m.get('lead', {}).get('p99'))} | "
            f"{_fmt(m.get('top_policy', {}).get('p99'), 100)} | {_fmt(m.get('policy_kl', {}).get('p99'))} | "
            f"{_fmt(v.get('top1_agreement'))} | {_fmt(it.get('export_seconds'))} | {_layers(it.get('layers'))} |"
        )
    batches = res["args"].get("batches") or list(BATCHES)
    for mode, title in (("device", "inputs and outputs on the GPU"), ("e2e", "numpy in, float32 numpy out")):
        lines += [
            "",
            f"## Throughput, evaluations/s ({title})",
            "",
            "| net | target | " + " | ".join(f"b{b}" for b in batches) + " |",
            "|---|---|" + "---|" * len(batches),
        ]
        for it in res["items"]:
            bench = (it.get("bench") or {}).get(mode) or {}
            if not bench:
                continue
            cells = " | ".join(_fmt(bench.get(str(b)), digits=6) for b in batches)
            lines.append(f"| {it['net']} | {it['target']} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("nets", nargs="+", help="model files (.bin.gz)")
    p.add_argument("--out", required=True, help="directory for gpu_check.json and gpu_check.md")
    p.add_argument(
        "--positions", default=None, help="positions JSONL (default: the bundled 80 oracle positions)"
    )
    p.add_argument(
        "--calib", default=None, help="calibration .npz for INT8 (default: built from bundled games)"
    )
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma list from {','.join(TARGETS)}")
    p.add_argument("--batches", default=",".join(map(str, BATCHES)))
    p.add_argument("--opt-batch", type=int, default=64, help="TensorRT profile opt batch (default 64)")
    p.add_argument("--opt-level", type=int, default=3, help="TensorRT builder optimisation level")
    p.add_argument("--bench-seconds", type=float, default=0.5, help="timed seconds per batch size and mode")
    p.add_argument("--no-bench", action="store_true")
    p.add_argument(
        "--int8-methods", default=None, help="INT8 calibration methods to try (default: the writer's)"
    )
    p.add_argument("--calib-positions", type=int, default=None, help="INT8 calibration positions")
    p.add_argument("--val-positions", type=int, default=None, help="INT8 method-selection positions")
    p.add_argument(
        "--rtx-aot", default=RTX_AOT_FALLBACK,
        help="TensorRT-RTX target to force on a GPU it does not list ('' to skip; default SM80)",
    )  # fmt: skip
    p.add_argument(
        "--time-budget", type=float, default=480,
        help="seconds after which no new work starts (default 480: one 10-minute device command)",
    )  # fmt: skip
    p.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "katadeploy-gpu-check"))
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [t for t in args.targets if t not in TARGETS]
    if bad:
        p.error(f"unknown targets {bad}; choose from {', '.join(TARGETS)}")
    args.batches = sorted({int(b) for b in args.batches.split(",")})
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible to torch; nothing to check", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False  # FP32 means FP32 for the baseline
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    check = Check(args)
    log(f"environment: {json.dumps(check.results['environment'], default=str)}")
    check.run()
    n_ok = sum(1 for it in check.results["items"] if it.get("status") == "ok")
    log(f"done: {n_ok}/{len(check.results['items'])} items ok; report in {check.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
