"""Issue 11 probe: how much of the INT8 activation error do finer activation scales remove?

The onnx-int8 recipe quantizes every trunk convolution's input with ONE u8 scale per tensor (after SmoothQuant-style
per-channel smoothing); int8_repair.py measured that this activation rounding, not the weights, is what keeps
g170e-b15c192 above KataGo's FP16 gate. A convolution can be split into K convolutions over disjoint groups of
input channels, summed: each group then has its own u8 scale, every multiply-accumulate is still int8, and the MAC
count does not change (K-1 extra adds per output). This probe measures, in PyTorch fake-quant with FP32 weights (so
only the activations are rounded), the KataGo-gate ratio on the 80 oracle positions against the FP32 net for:
per-tensor (the recipe's granularity), K = 2, 4, 8 channel groups (channels sorted by range), and per channel
(the limit of the idea), each with u8 asymmetric ranges whose upper end is chosen by MSE like int8_repair.py.

Measured 2026-12-06 on g170e-b15c192 (2 cores of an AMD EPYC Zen 3; smoothing alpha 0.5, FP32 weights unless
said; worst KataGo FP16 limit ratio on the 80 oracle positions, nearly always policy KL p99; logs
act_groups-b15-*.log, JSON beside them). Ranges are u8 [min, max x headroom] over every on-board value of the
calibration positions (every-size calibration split), or MSE-clipped:

| activation ranges | per tensor | 2 groups | 4 groups | 8 groups | per channel |
|---|---|---|---|---|---|
| MSE clip, 256 positions | 2.58x | 4.08x | 7.14x | 8.48x | 9.39x |
| max, 256 positions | 3.42x | 1.81x | 1.55x | 2.20x | 2.59x |
| max, 768 positions | | | 1.08x | **0.65x** | 1.05x |
| max x 1.25, 768 positions | 6.75x | | 1.72x | 1.36x | 1.15x |
| max x 1.5, 768 positions | | | 2.97x | | 1.83x |
| max, 768 positions, RTN INT8 weights | 5.22x | | | 3.74x | |
| max x 1.25, 768 positions, RTN INT8 weights | | | | | 2.33x |
| max, 768 positions, GPTQ INT8 weights (Hessians on 128 positions) | 2.98x | | | 2.22x | |
| same, smoothing alpha 0 | | | | 1.82x | |
| same as two rows up, Hessians on 512 positions | | | | 1.79x | |
| bound: max of the 80 test positions themselves | 3.83x | | 0.69x | | 0.49x |
| max, 768 positions, GPTQ weights with one scale per row AND group (`--weight-groups`), Hessians on 128 | | | | 1.29x | |
| same, 16 groups / smoothing alpha 0 / Hessians on 256 | | | | 1.25x (16) / 1.37x / 1.40x | |

Per-tensor u8 activations cannot pass even with ranges taken from the test positions (3.8x): the rounding step is
the error. Per-group scales remove most of it once the ranges cover what the net meets: with maxima over 768
calibration positions, 8 groups reach 0.65x (FP32 weights; GPTQ weights alone cost 0.53x on this net). MSE clipping
is wrong for finer groups (a group's clip does not hold on unseen positions), and so is headroom (it costs
resolution). Weights rounded to nearest (per output channel, after smoothing) add much of it back (8 groups 3.74x):
GPTQ weights bring 8 groups to 2.22x (alpha 0: 1.82x) against per tensor's 2.98x. The weights alone, activations
float (`--groups=-1 --weights gptq`), cost 0.75x (alpha 0.5) and 1.00x (alpha 0), 0.58x with Hessians on 512
positions (alpha 0.5, 10 min): each half of the error is near the
gate by itself and they compound (2.2x together from 0.65x and 0.75x alone), so passing needs each at about a third of
the gate, not one of them fixed. The p99 of 80 positions is a noisy statistic: read differences under ~1.3x as noise.
(The MSE rows were measured with the probe's own first MSE search, ``hi = lo + f (max - lo)`` with the lower end from
the sample; it now calls int8_repair's ``mse_range`` (``hi = f max``), which differs by the small ``lo``. The max rows
take both ends from every value. Smoothing is int8_repair's ``smoothing_scales``; the 8-group 0.65x row re-measured
with it gives 0.62x (act_groups-b15-max-h1-n768-recheck.log); the other rows were not re-run.)

Every GPTQ row above took its Hessians from the FIRST N calibration positions, and the calibration split is ordered
by board size: they were 7x7 and 9x9 positions only (``--hessian-first`` reproduces it; the default now spreads
them). In the real onnx-int8 graph (``--option int8_act_groups=8``, scripts/reports/int8/groups/) Hessians spread
over every size moved the same recipe from 2.26x to 1.05x.

Usage: python scripts/reports/int8/act_groups.py [NET] [--calib-positions N] [--alpha A] [--weights fp32|rtn]
[--groups 1,2,4,8,0] [--clip mse|max]
Prints a Markdown table; writes act_groups-NET.json beside this script.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from katadeploy.data.calibration import default_calibration_path, load_calibration
from katadeploy.export.int8_repair import mse_range, smoothing_scales
from katadeploy.model.net import KataGoNet
from katadeploy.model.source import open_net
from katadeploy.runtime.base import RawBatch
from katadeploy.validate.positions import load_validation_set
from katadeploy.validate.scoring import compare_on

PER_CHANNEL_SAMPLE = 8192


def run(net: KataGoNet, spatial: np.ndarray, global_: np.ndarray, batch: int = 32) -> RawBatch:
    outs = []
    with torch.inference_mode():
        for i in range(0, len(spatial), batch):
            o = net(torch.from_numpy(spatial[i : i + batch]), torch.from_numpy(global_[i : i + batch]), None)
            outs.append([t.float().numpy() for t in o])
    return RawBatch(*(np.concatenate(p) for p in zip(*outs)))


def gptq_weights(net, convs, quant, orig_w, spatial, global_, weight_groups: bool = False) -> None:
    """Round every quantized conv's smoothed weight with GPTQ (katadeploy.export.int8_repair.gptq), the Hessian
    taken from its fake-quantized smoothed inputs (this activation quantizer) over ``spatial`` in the FP32 net."""
    import torch.nn.functional as F

    from katadeploy.export.int8_repair import gptq, group_columns

    for k, m in convs.items():
        m.weight.data = orig_w[k].clone()
    hess: dict[str, torch.Tensor] = {}

    def acc(name, mod):
        inv_s, sc, zp, _s = quant[name][:4]

        def hook(_m, inp):
            xs = inp[0] * inv_s
            xq = xs if sc is None else (torch.clamp(torch.round(xs / sc) + zp, 0, 255) - zp) * sc
            cols = F.unfold(xq, mod.kernel_size, mod.dilation, mod.padding, mod.stride)  # [B, K, L]
            cols = cols.transpose(0, 1).reshape(cols.shape[1], -1).double()
            hess[name] = hess.get(name, 0) + cols @ cols.T

        return hook

    handles = [m.register_forward_pre_hook(acc(k, m)) for k, m in convs.items()]
    with torch.inference_mode():
        for i in range(0, len(spatial), 16):
            net(torch.from_numpy(spatial[i : i + 16]), torch.from_numpy(global_[i : i + 16]), None)
    for h in handles:
        h.remove()
    for k, m in convs.items():
        s = quant[k][3]
        w_s = (orig_w[k] * s).reshape(orig_w[k].shape[0], -1).numpy()
        if weight_groups and quant[k][4] is not None:
            col_groups = group_columns(quant[k][4], int(np.prod(orig_w[k].shape[2:])))
            q, scale = gptq(w_s, hess[k].numpy(), col_groups=col_groups)
            col_scale = np.empty_like(w_s)
            for j, cg in enumerate(col_groups):
                col_scale[:, cg] = scale[:, j : j + 1]
            wq = torch.from_numpy(q.astype(np.float32) * col_scale).reshape(orig_w[k].shape)
        else:
            q, scale = gptq(w_s, hess[k].numpy())
            wq = torch.from_numpy(q.astype(np.float32) * scale[:, None]).reshape(orig_w[k].shape)
        m.weight.data = wq / s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("net", nargs="?", default="g170e-b15c192")
    ap.add_argument("--calib-positions", type=int, default=256)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--weights", choices=("fp32", "rtn", "gptq"), default="fp32")
    ap.add_argument(
        "--gptq-positions", type=int, default=128, help="calibration positions of GPTQ's Hessians"
    )
    ap.add_argument("--groups", default="1,2,4,8,0", help="0: per channel, -1: activations float")
    ap.add_argument(
        "--calib-on-test",
        action="store_true",
        help="diagnostic bound only: take the ranges from the 80 test positions themselves",
    )
    ap.add_argument(
        "--weight-groups",
        action="store_true",
        help="GPTQ weights with one scale per output channel and activation group (the split convolutions' own)",
    )
    ap.add_argument(
        "--hessian-first", action="store_true", help="GPTQ Hessians from the first N positions (the old rows)"
    )
    ap.add_argument("--headroom", type=float, default=1.0, help="group ranges widened by this factor")
    ap.add_argument(
        "--clip", choices=("mse", "max"), default="mse", help="upper end: MSE clip or the max of every value"
    )
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    source = open_net(args.net)
    model = source.model
    net = KataGoNet(model).eval()
    convs = {
        k: m for k, m in net.named_modules() if k.startswith("blocks.") and isinstance(m, torch.nn.Conv2d)
    }

    cs = load_calibration(default_calibration_path(19, False, every_size=True)).subset("calib")
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(cs), size=min(args.calib_positions, len(cs)), replace=False))
    cal_s, cal_g = cs.spatial[idx].astype(np.float32), cs.global_[idx].astype(np.float32)
    if args.calib_on_test:
        test = load_validation_set(None, model)
        cal_s, cal_g, idx = test.spatial, test.global_, np.arange(len(test))
    on_board = cal_s[:, 0] > 0.5  # [N, H, W]
    # GPTQ's Hessian positions: evenly spread over the (board-size-ordered) calibration positions, or the first N
    # (what the rows measured before 2026-12-06 22:00 used: 7x7 and 9x9 positions only)
    n_h = min(args.gptq_positions, len(cal_s))
    hess_idx = np.arange(n_h) if args.hessian_first else np.linspace(0, len(cal_s) - 1, n_h).round().astype(int)

    # 1. per-channel samples of every quantized input (on-board points only), from the FP32 net
    samples: dict[str, list[np.ndarray]] = {k: [] for k in convs}
    cur = {"mask": None}

    def grab(name):
        def hook(_m, inp):
            x = inp[0].detach().numpy()  # [B, C, H, W]
            m = cur["mask"]
            samples[name].append(x.transpose(1, 0, 2, 3)[:, m])  # [C, points]

        return hook

    handles = [m.register_forward_pre_hook(grab(k)) for k, m in convs.items()]
    with torch.inference_mode():
        for i in range(0, len(cal_s), 32):
            cur["mask"] = on_board[i : i + 32]
            net(torch.from_numpy(cal_s[i : i + 32]), torch.from_numpy(cal_g[i : i + 32]), None)
    for h in handles:
        h.remove()
    stats = {}
    for k, parts in samples.items():
        x = np.concatenate(parts, axis=1)
        pick = rng.choice(x.shape[1], size=min(PER_CHANNEL_SAMPLE, x.shape[1]), replace=False)
        # the sample serves the MSE search; the true per-channel extremes (of every value, not the sample) serve
        # the max ranges and the smoothing
        stats[k] = (x[:, pick], np.abs(x).max(axis=1), x.min(axis=1), x.max(axis=1))
    samples.clear()

    # smoothing factors (int8_repair's rule) and the weights (FP32 or per-output-channel RTN INT8)
    orig_w = {k: m.weight.detach().clone() for k, m in convs.items()}
    smooth = {}
    for k, m in convs.items():
        wmax = orig_w[k].abs().amax(dim=(0, 2, 3)).numpy()
        smooth[k] = smoothing_scales(stats[k][1], wmax, args.alpha) if args.alpha > 0 else np.ones_like(wmax)
        if args.weights == "rtn":
            w = orig_w[k] * torch.from_numpy(smooth[k].astype(np.float32)).reshape(1, -1, 1, 1)
            sc = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127.0
            wq = torch.clamp(torch.round(w / sc), -127, 127) * sc
            m.weight.data = wq / torch.from_numpy(smooth[k].astype(np.float32)).reshape(1, -1, 1, 1)

    vset = load_validation_set(None, model)
    ref_net = KataGoNet(model).eval()
    ref = run(ref_net, vset.spatial, vset.global_)

    rows = []
    for g in [int(v) for v in args.groups.split(",")]:
        quant = {}
        for k in convs:
            v, _, cmin, cmax = stats[k]
            s = smooth[k]
            vs = v / s[:, None]
            smin, smax = cmin / s, cmax / s
            c = vs.shape[0]
            k_groups = c if g <= 0 else g
            order = np.argsort(smax)
            scale = np.empty(c, np.float32)
            lo_c = np.empty(c, np.float32)
            chan_groups = np.array_split(order, k_groups)
            for grp in chan_groups:
                gv = vs[grp].ravel()
                lo = min(0.0, float(smin[grp].min()))
                hi = (
                    mse_range(gv, lo, float(gv.max()), "u8")[1]
                    if args.clip == "mse"
                    else float(smax[grp].max())
                )
                sc = max((hi - lo) * args.headroom / 255.0, 1e-8)
                scale[grp] = sc
                lo_c[grp] = lo
            zp = np.round(-lo_c / scale)
            quant[k] = (
                torch.from_numpy((1.0 / s).astype(np.float32)).reshape(1, -1, 1, 1),
                torch.from_numpy(scale).reshape(1, -1, 1, 1),
                torch.from_numpy(zp.astype(np.float32)).reshape(1, -1, 1, 1),
                torch.from_numpy(s.astype(np.float32)).reshape(1, -1, 1, 1),
                chan_groups if 0 < k_groups < c else None,
            )

        def fq(params):
            inv_s, sc, zp, s = params[:4]
            float_acts = sc is None

            def hook(_m, inp):
                if float_acts:  # weights alone
                    return None
                xs = inp[0] * inv_s
                q = torch.clamp(torch.round(xs / sc) + zp, 0, 255)
                return ((q - zp) * sc * s,)

            return hook

        float_acts = g < 0
        if float_acts:  # weights alone: no activation quantizer (GPTQ's Hessian from float inputs)
            quant = {k: (q[0], None, None, q[3], None) for k, q in quant.items()}
        if args.weights == "gptq":
            gptq_weights(
                net, convs, quant, orig_w, cal_s[hess_idx], cal_g[hess_idx], args.weight_groups,
            )
        handles = [m.register_forward_pre_hook(fq(quant[k])) for k, m in convs.items()]
        raw = run(net, vset.spatial, vset.global_)
        for h in handles:
            h.remove()
        metrics = compare_on(vset, ref, raw, model)
        w = metrics.worst("int8")
        label = "per tensor" if g == 1 else ("per channel" if g == 0 else "float" if g < 0 else f"{g} groups")
        row = {"granularity": label, "groups": g, "worst": f"{w.metric} {w.stat}", "ratio": float(w.ratio)}
        rows.append(row)
        print(f"| {label} | {w.ratio:.3f}x ({w.metric} {w.stat}) |", flush=True)
    out = {
        "net": source.name, "calib_positions": int(len(idx)), "alpha": args.alpha, "weights": args.weights, "clip": args.clip, "headroom": args.headroom, "calib_on_test": args.calib_on_test, "gptq_positions": args.gptq_positions, "weight_groups": args.weight_groups, "hessian_first": args.hessian_first,
        "quantized_inputs": len(convs), "rows": rows, "seconds": round(time.perf_counter() - t0, 1),
        "cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t"),
    }  # fmt: skip
    tag = (
        f"a{args.alpha}-{args.weights}-{args.clip}-h{args.headroom:g}-n{len(idx)}-g{args.groups.replace(',', '.')}"
        + ("-on-test" * args.calib_on_test)
        + (f"-hp{args.gptq_positions}" * (args.weights == "gptq"))
        + ("-wg" * args.weight_groups)
        + ("-hfirst" * (args.hessian_first and args.weights == "gptq"))
    )
    path = Path(__file__).with_name(f"act_groups-{source.name}-{tag}.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path} ({out['seconds']} s)")


if __name__ == "__main__":
    main()
