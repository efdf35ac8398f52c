"""Reader for KataGo's model files (``.bin.gz``, ``.bin``, ``.txt.gz``, ``.txt``), model versions 3-17.

Contract:
- :func:`load_model` returns a :class:`~katadeploy.model.desc.ModelDesc` holding exactly the values in the file.
- Any defect (truncated or corrupt gzip, wrong tokens, unsupported versions, non-finite floats, mismatched
  channel counts, absurd sizes) raises :class:`~katadeploy.errors.ModelFormatError` naming the field being read
  and the byte offset (in the decompressed stream; in the compressed file for gzip errors).
- Memory stays bounded by the file size: decompression is capped at ``MAX_EXPANSION`` times the compressed
  size, and every array size claimed by a header is checked against the bytes that remain before allocating.
- The file is a whitespace-separated token stream; binary float arrays are ``@BIN@`` followed by raw
  little-endian float32, so the tokenizer switches to byte mode there.
"""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

import numpy as np

from katadeploy.errors import ModelFormatError
from katadeploy.model import desc as d

MIN_VERSION = 3
MAX_VERSION = 17
MAX_EXPANSION = 64  # a decompressed model larger than this many times its gzip is treated as corrupt
MAX_CHANNELS = 1 << 16
MAX_KERNEL = 31
MAX_TOKEN = 1024
_WS = b" \t\n\r\v\f"
_TOKEN_RE = re.compile(rb"[ \t\n\r\v\f]*([^ \t\n\r\v\f]+)")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,96}$")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")


def _decompress(data: bytes) -> bytes:
    """Decompress (possibly multi-member) gzip with a size cap; errors name the compressed offset."""
    cap = max(MAX_EXPANSION * len(data), 1 << 20)
    out: list[bytes] = []
    total = 0
    pos = 0
    while pos < len(data):
        dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        chunk_start = pos
        while True:
            if pos >= len(data):
                raise ModelFormatError("gzip stream is truncated", "gzip stream", pos)
            chunk = data[pos : pos + (1 << 20)]
            try:
                piece = dec.decompress(chunk, cap - total + 1)
            except zlib.error as exc:
                raise ModelFormatError(f"corrupt gzip data ({exc})", "gzip stream", pos) from None
            total += len(piece)
            if total > cap:
                raise ModelFormatError(
                    f"decompressed size exceeds {MAX_EXPANSION}x the file size; refusing (gzip bomb or corrupt)",
                    "gzip stream",
                    pos,
                )
            out.append(piece)
            consumed = len(chunk) - len(dec.unused_data) if dec.eof else len(chunk)
            if dec.unconsumed_tail:
                consumed -= len(dec.unconsumed_tail)
            pos += consumed
            if dec.eof:
                break
        if pos == chunk_start:  # pragma: no cover - defensive
            break
        # trailing zero padding after the last member is tolerated, as gzip does
        if data[pos:].strip(b"\x00") == b"":
            break
    return b"".join(out)


def read_model_bytes(path: str | os.PathLike) -> tuple[bytes, bool | None]:
    """Return the decompressed stream and whether floats are binary (None = try binary, then text)."""
    p = str(path)
    lower = p.lower()
    with open(p, "rb") as f:
        raw = f.read()
    if lower.endswith(".txt"):
        return raw, False
    if lower.endswith(".bin"):
        return raw, True
    if lower.endswith(".gz"):
        if raw[:2] != b"\x1f\x8b":
            raise ModelFormatError("not a gzip file (bad magic bytes)", "gzip header", 0)
        data = _decompress(raw)
        if lower.endswith(".txt.gz"):
            return data, False
        if lower.endswith(".bin.gz"):
            return data, True
        return data, None
    raise ModelFormatError(
        f"unrecognised model file name {Path(p).name!r}: expected .bin.gz, .txt.gz, .bin, .txt or .gz",
        "file name",
    )


def load_model(path: str | os.PathLike) -> d.ModelDesc:
    """Parse a KataGo model file into a :class:`ModelDesc`; a :class:`ModelFormatError` names the file."""
    try:
        data, binary = read_model_bytes(path)
        if binary is None:
            try:
                return parse_model(data, binary=True)
            except ModelFormatError as first:
                try:
                    return parse_model(data, binary=False)
                except ModelFormatError:
                    raise first from None
        return parse_model(data, binary=binary)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{os.fspath(path)}: {exc.message}", exc.field, exc.offset) from None


def parse_model(data: bytes, binary: bool) -> d.ModelDesc:
    return _Parser(data, binary).model()


class _Parser:
    def __init__(self, data: bytes, binary: bool):
        self.buf = data
        self.pos = 0
        self.binary = binary
        self.version = 0

    # ---- tokens -----------------------------------------------------------------------------------------
    def fail(self, message: str, field: str, offset: int | None = None):
        raise ModelFormatError(message, field, self.pos if offset is None else offset)

    def token(self, field: str) -> str:
        m = _TOKEN_RE.match(self.buf, self.pos, min(len(self.buf), self.pos + 4096 + MAX_TOKEN))
        if m is None:
            self.fail("unexpected end of file", field)
        start = m.start(1)
        if m.end(1) - start > MAX_TOKEN:
            self.fail("token is implausibly long (corrupt file?)", field, start)
        self.pos = m.end(1)
        try:
            return m.group(1).decode("ascii")
        except UnicodeDecodeError:
            self.fail("non-ASCII bytes where a token was expected", field, start)
            raise  # unreachable

    def int_(self, field: str, lo: int = 0, hi: int = MAX_CHANNELS) -> int:
        start = self.pos
        tok = self.token(field)
        if not _INT_RE.match(tok):
            self.fail(f"expected an integer, found {tok[:40]!r}", field, start)
        value = int(tok)
        if not lo <= value <= hi:
            self.fail(f"value {value} out of range [{lo}, {hi}]", field, start)
        return value

    def float_token(self, field: str) -> tuple[float, str]:
        start = self.pos
        tok = self.token(field)
        try:
            value = float(tok)
        except ValueError:
            self.fail(f"expected a number, found {tok[:40]!r}", field, start)
        if not np.isfinite(value):
            self.fail("non-finite value", field, start)
        return value, tok

    def floats(self, n: int, field: str) -> np.ndarray:
        remaining = len(self.buf) - self.pos
        if self.binary:
            if 4 * n > remaining:
                self.fail(f"header claims {n} floats but only {remaining} bytes remain", field)
            at = self.buf.find(b"@", self.pos, self.pos + 101)
            if at < 0:
                self.fail(
                    "no '@BIN@' marker where binary floats were expected (a .txt model named .bin?)", field
                )
            if self.buf[at + 1 : at + 5] != b"BIN@":
                self.fail("bad binary float block header (expected '@BIN@')", field, at)
            start = at + 5
            if start + 4 * n > len(self.buf):
                self.fail(f"binary float block truncated: need {n} floats", field, start)
            arr = np.frombuffer(self.buf, dtype="<f4", count=n, offset=start).astype(np.float32)
            self.pos = start + 4 * n
            bad = ~np.isfinite(arr)
            if bad.any():
                i = int(np.argmax(bad))
                self.fail("non-finite float weight", field, start + 4 * i)
            return arr
        if 2 * n > remaining + 1:
            self.fail(f"header claims {n} floats but only {remaining} bytes remain", field)
        start = self.pos
        chunk = max(64, 16 * n)
        while True:
            parts = self.buf[self.pos : self.pos + chunk].split(None, n)
            at_end = self.pos + chunk >= len(self.buf)
            if len(parts) > n or at_end:
                break
            chunk *= 2
        if len(parts) < n:
            self.fail(f"unexpected end of file inside a text float array of {n}", field)
        if len(parts) > n:
            rest = parts[n]
            self.pos = self.pos + min(chunk, len(self.buf) - self.pos) - len(rest)
            # bytes.split(None, n) strips the leading whitespace of the remainder; step back over nothing
        else:
            self.pos = len(self.buf)
        try:
            arr = np.array(parts[:n], dtype=np.bytes_).astype(np.float64).astype(np.float32)
        except ValueError:
            self.fail(
                "text float array contains a token that is not a number (a .bin model named .txt?)",
                field,
                start,
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            self.fail(f"non-finite float weight at element {int(np.argmax(bad))}", field, start)
        return arr

    def name(self, field: str) -> str:
        return self.token(field)

    # ---- layers -----------------------------------------------------------------------------------------
    def conv(self, what: str) -> d.Conv:
        name = self.name(what)
        f = f"{name} ({what})"
        ky = self.int_(f + ".convYSize", 1, MAX_KERNEL)
        kx = self.int_(f + ".convXSize", 1, MAX_KERNEL)
        ic = self.int_(f + ".inChannels", 1)
        oc = self.int_(f + ".outChannels", 1)
        dy = self.int_(f + ".dilationY", 1, 64)
        dx = self.int_(f + ".dilationX", 1, 64)
        if ky % 2 == 0 or kx % 2 == 0:
            self.fail(f"convolution sizes must be odd, found {ky}x{kx}", f + ".convYSize")
        w = self.floats(ky * kx * ic * oc, f + ".weights")
        return d.Conv(name, np.ascontiguousarray(w.reshape(ky, kx, ic, oc).transpose(3, 2, 0, 1)), dy, dx)

    def bn(self, what: str) -> d.BatchNorm:
        name = self.name(what)
        f = f"{name} ({what})"
        c = self.int_(f + ".numChannels", 1)
        eps, _ = self.float_token(f + ".epsilon")
        if not eps > 0:
            self.fail(f"epsilon must be positive, found {eps}", f + ".epsilon")
        has_scale = self.int_(f + ".hasScale", 0, 1)
        has_bias = self.int_(f + ".hasBias", 0, 1)
        mean = self.floats(c, f + ".mean")
        var = self.floats(c, f + ".variance")
        scale = self.floats(c, f + ".scale") if has_scale else None
        bias = self.floats(c, f + ".bias") if has_bias else None
        return d.BatchNorm(name, float(np.float32(eps)), mean, var, scale, bias)

    def act(self, what: str) -> d.Activation:
        name = self.name(what)
        if self.version >= 11:
            start = self.pos
            kind = self.token(f"{name} ({what}).kind")
            if kind not in d.ACTIVATIONS:
                self.fail(f"unknown activation {kind[:40]!r}", f"{name} ({what}).kind", start)
            return d.Activation(name, kind)
        return d.Activation(name, "ACTIVATION_RELU")

    def matmul(self, what: str) -> d.MatMul:
        name = self.name(what)
        f = f"{name} ({what})"
        ic = self.int_(f + ".inChannels", 1)
        oc = self.int_(f + ".outChannels", 1)
        return d.MatMul(name, self.floats(ic * oc, f + ".weights").reshape(ic, oc))

    def matbias(self, what: str) -> d.MatBias:
        name = self.name(what)
        c = self.int_(f"{name} ({what}).numChannels", 1)
        return d.MatBias(name, self.floats(c, f"{name} ({what}).bias"))

    def tf_norm(self, what: str) -> d.TransformerRMSNorm:
        name = self.name(what)
        f = f"{name} ({what})"
        c = self.int_(f + ".numChannels", 1)
        eps, _ = self.float_token(f + ".epsilon")
        if not 0 < eps <= 1:
            self.fail(f"epsilon must be in (0, 1], found {eps}", f + ".epsilon")
        return d.TransformerRMSNorm(name, eps, self.floats(c, f + ".weight"))

    def rms_norm(self, what: str) -> d.RMSNorm:
        name = self.name(what)
        f = f"{name} ({what})"
        c = self.int_(f + ".numChannels", 1)
        eps, _ = self.float_token(f + ".epsilon")
        if not 0 < eps <= 1:
            self.fail(f"epsilon must be in (0, 1], found {eps}", f + ".epsilon")
        spatial = self.int_(f + ".spatial", 0, 1)
        cgroup = self.int_(f + ".cgroupSize", 0, MAX_CHANNELS)
        if cgroup != 0:
            self.fail("grouped RMSNorm (cgroupSize != 0) is not supported by KataGo", f + ".cgroupSize")
        gamma = self.floats(c, f + ".gamma")
        beta = self.floats(c, f + ".beta")
        return d.RMSNorm(name, eps, bool(spatial), gamma, beta, cgroup)

    def check(self, cond: bool, message: str, field: str, offset: int) -> None:
        if not cond:
            self.fail(message, field, offset)

    # ---- blocks -----------------------------------------------------------------------------------------
    def block_stack(self, count: int, channels: int, owner: str) -> list[d.Block]:
        blocks: list[d.Block] = []
        for i in range(count):
            start = self.pos
            kind = self.token(f"{owner}.block[{i}].kind")
            parse = {
                "ordinary_block": self.ordinary_block,
                "gpool_block": self.gpool_block,
                "nested_bottleneck_block": self.nested_block,
                "transformer_attention_block": self.attention_block,
                "transformer_ffn_block": self.ffn_block,
            }.get(kind)
            if parse is None:
                self.fail(f"unknown block kind {kind[:40]!r}", f"{owner}.block[{i}].kind", start)
            block = parse()
            c_in, c_out = _block_io_channels(block)
            self.check(
                c_in == channels and c_out == channels,
                f"block {block.name} has in/out channels {c_in}/{c_out} but its stack has {channels}",
                f"{block.name}.channels",
                start,
            )
            blocks.append(block)
        return blocks

    def ordinary_block(self) -> d.OrdinaryBlock:
        start = self.pos
        name = self.name("ordinary_block.name")
        b = d.OrdinaryBlock(
            name,
            self.bn("preBN"),
            self.act("preActivation"),
            self.conv("regularConv"),
            self.bn("midBN"),
            self.act("midActivation"),
            self.conv("finalConv"),
        )
        self.check(
            b.pre_bn.channels == b.regular_conv.in_channels, "preBN/regularConv channel mismatch", name, start
        )
        self.check(
            b.mid_bn.channels == b.regular_conv.out_channels,
            "midBN/regularConv channel mismatch",
            name,
            start,
        )
        self.check(
            b.final_conv.in_channels == b.mid_bn.channels, "finalConv/midBN channel mismatch", name, start
        )
        return b

    def gpool_block(self) -> d.GPoolBlock:
        start = self.pos
        name = self.name("gpool_block.name")
        b = d.GPoolBlock(
            name,
            self.bn("preBN"),
            self.act("preActivation"),
            self.conv("regularConv"),
            self.conv("gpoolConv"),
            self.bn("gpoolBN"),
            self.act("gpoolActivation"),
            self.matmul("gpoolToBiasMul"),
            self.bn("midBN"),
            self.act("midActivation"),
            self.conv("finalConv"),
        )
        c = b.pre_bn.channels
        self.check(
            b.regular_conv.in_channels == c and b.gpool_conv.in_channels == c,
            "conv in-channel mismatch",
            name,
            start,
        )
        self.check(
            b.gpool_bn.channels == b.gpool_conv.out_channels, "gpoolBN/gpoolConv mismatch", name, start
        )
        self.check(
            b.gpool_to_bias_mul.in_channels == 3 * b.gpool_bn.channels,
            "gpoolToBiasMul in != 3*gpool",
            name,
            start,
        )
        self.check(
            b.gpool_to_bias_mul.out_channels == b.regular_conv.out_channels,
            "gpoolToBiasMul out mismatch",
            name,
            start,
        )
        self.check(
            b.mid_bn.channels == b.regular_conv.out_channels, "midBN/regularConv mismatch", name, start
        )
        self.check(b.final_conv.in_channels == b.mid_bn.channels, "finalConv/midBN mismatch", name, start)
        return b

    def nested_block(self) -> d.NestedBottleneckBlock:
        start = self.pos
        name = self.name("nested_bottleneck_block.name")
        n = self.int_(f"{name}.numBlocks", 1, 4096)
        pre_bn, pre_act, pre_conv = self.bn("preBN"), self.act("preActivation"), self.conv("preConv")
        self.check(pre_bn.channels == pre_conv.in_channels, "preBN/preConv channel mismatch", name, start)
        inner = self.block_stack(n, pre_conv.out_channels, name)
        post_bn, post_act, post_conv = self.bn("postBN"), self.act("postActivation"), self.conv("postConv")
        self.check(post_bn.channels == pre_conv.out_channels, "postBN/preConv channel mismatch", name, start)
        self.check(post_conv.in_channels == post_bn.channels, "postConv/postBN channel mismatch", name, start)
        return d.NestedBottleneckBlock(name, pre_bn, pre_act, pre_conv, inner, post_bn, post_act, post_conv)

    def attention_block(self) -> d.AttentionBlock:
        start = self.pos
        name = self.name("transformer_attention_block.name")
        heads = self.int_(f"{name}.numHeads", 1, 4096)
        kv = self.int_(f"{name}.numKVHeads", 1, 4096)
        qd = self.int_(f"{name}.qHeadDim", 1, 4096)
        vd = self.int_(f"{name}.vHeadDim", 1, 4096)
        use_rope = self.int_(f"{name}.useRope", 0, 1)
        learnable = self.int_(f"{name}.learnableRope", 0, 1)
        self.check(
            heads % kv == 0, f"numHeads {heads} not divisible by numKVHeads {kv}", f"{name}.numKVHeads", start
        )
        self.check(not use_rope or qd % 2 == 0, "qHeadDim must be even with RoPE", f"{name}.qHeadDim", start)
        norm = self.tf_norm("preLN")
        q, k, v, o = self.matmul("qProj"), self.matmul("kProj"), self.matmul("vProj"), self.matmul("outProj")
        self.check(q.out_channels == heads * qd, "qProj out != numHeads*qHeadDim", f"{name}.qProj", start)
        self.check(k.out_channels == kv * qd, "kProj out != numKVHeads*qHeadDim", f"{name}.kProj", start)
        self.check(v.out_channels == kv * vd, "vProj out != numKVHeads*vHeadDim", f"{name}.vProj", start)
        self.check(o.in_channels == heads * vd, "outProj in != numHeads*vHeadDim", f"{name}.outProj", start)
        self.check(
            q.in_channels == k.in_channels == v.in_channels == norm.weight.shape[0],
            "projection in-channels",
            name,
            start,
        )
        block = d.AttentionBlock(name, heads, kv, qd, vd, bool(use_rope), bool(learnable), norm, q, k, v, o)
        if use_rope and learnable:
            block.rope_name = self.name(f"{name}.ropeFreqs")
            f = f"{name}.ropeFreqs"
            n_kv = self.int_(f + ".numKVHeads", 1, 4096)
            pairs = self.int_(f + ".numPairs", 1, 4096)
            dim2 = self.int_(f + ".dim2", 0, 16)
            self.check(n_kv == kv, f"ropeNumKVHeads {n_kv} != numKVHeads {kv}", f + ".numKVHeads", start)
            self.check(pairs == qd // 2, f"ropeNumPairs {pairs} != qHeadDim/2", f + ".numPairs", start)
            self.check(dim2 == 2, "rope freq dim2 must be 2", f + ".dim2", start)
            block.rope_freqs = self.floats(n_kv * pairs * 2, f + ".weights").reshape(n_kv, pairs, 2)
        elif use_rope:
            block.rope_name = self.name(f"{name}.ropeTheta")
            theta, tok = self.float_token(f"{name}.ropeTheta.value")
            self.check(theta > 0, "rope theta must be positive", f"{name}.ropeTheta.value", start)
            block.rope_theta_token = tok
        return block

    def ffn_block(self) -> d.FFNBlock:
        start = self.pos
        name = self.name("transformer_ffn_block.name")
        c = self.int_(f"{name}.numChannels", 1)
        fc = self.int_(f"{name}.ffnChannels", 1)
        swiglu = self.int_(f"{name}.useSwiGLU", 0, 1)
        norm = self.tf_norm("preLN")
        l1 = self.matmul("linear1")
        gate = self.matmul("linearGate") if swiglu else None
        l2 = self.matmul("linear2")
        self.check(
            l1.in_channels == c and l1.out_channels == fc, "linear1 shape mismatch", f"{name}.linear1", start
        )
        if gate is not None:
            self.check(
                gate.in_channels == c and gate.out_channels == fc,
                "linearGate shape mismatch",
                f"{name}.linearGate",
                start,
            )
        self.check(
            l2.in_channels == fc and l2.out_channels == c, "linear2 shape mismatch", f"{name}.linear2", start
        )
        self.check(norm.weight.shape[0] == c, "preLN channel mismatch", f"{name}.preLN", start)
        return d.FFNBlock(name, c, fc, bool(swiglu), norm, l1, gate, l2)

    # ---- top level --------------------------------------------------------------------------------------
    def meta_encoder(self) -> d.MetaEncoder:
        start = self.pos
        name = self.name("sgfMetadataEncoder.name")
        n = self.int_(f"{name}.numInputMetaChannels", 1)
        self.check(n == 192, f"numInputMetaChannels {n} != 192", f"{name}.numInputMetaChannels", start)
        enc = d.MetaEncoder(
            name, n, self.matmul("mul1"), self.matbias("bias1"), self.act("act1"),
            self.matmul("mul2"), self.matbias("bias2"), self.act("act2"), self.matmul("mul3"),
        )  # fmt: skip
        self.check(enc.mul1.in_channels == n, "mul1 in-channels != 192", f"{name}.mul1", start)
        self.check(
            enc.mul1.out_channels == enc.bias1.bias.shape[0] == enc.mul2.in_channels,
            "mul1/bias1/mul2",
            name,
            start,
        )
        self.check(
            enc.mul2.out_channels == enc.bias2.bias.shape[0] == enc.mul3.in_channels,
            "mul2/bias2/mul3",
            name,
            start,
        )
        return enc

    def trunk(self, meta_version: int, n_in: int, n_glob: int) -> d.Trunk:
        start = self.pos
        name = self.name("trunk.name")
        nb = self.int_("trunk.numBlocks", 1, 4096)
        c = self.int_("trunk.trunkNumChannels", 1)
        mid = self.int_("trunk.midNumChannels", 1)
        reg = self.int_("trunk.regularNumChannels", 1)
        dil = self.int_("trunk.dilatedNumChannels", 0)
        gp = self.int_("trunk.gpoolNumChannels", 1)
        norm_kind = 0
        if self.version >= 15:
            norm_kind = self.int_("trunk.trunkNormKind", 0, 1)
            for opt in "BCDEF":
                self.int_(f"trunk.option{opt} (must be 0)", 0, 0)
        initial_conv = self.conv("initialConv")
        self.check(initial_conv.out_channels == c, "initialConv out != trunk channels", "initialConv", start)
        self.check(
            initial_conv.in_channels == n_in, "initialConv in != numInputChannels", "initialConv", start
        )
        initial_matmul = self.matmul("initialMatMul")
        self.check(
            initial_matmul.out_channels == c, "initialMatMul out != trunk channels", "initialMatMul", start
        )
        self.check(
            initial_matmul.in_channels == n_glob,
            "initialMatMul in != numInputGlobalChannels",
            "initialMatMul",
            start,
        )
        meta = None
        if meta_version > 0:
            meta = self.meta_encoder()
            self.check(
                meta.mul3.out_channels == c,
                "meta encoder output != trunk channels",
                "sgfMetadataEncoder",
                start,
            )
        blocks = self.block_stack(nb, c, name)
        tip_start = self.pos
        tip_norm: d.BatchNorm | d.RMSNorm = (
            self.bn("trunkTipBN") if norm_kind == 0 else self.rms_norm("trunkTipRMSNorm")
        )
        tip_c = tip_norm.channels if isinstance(tip_norm, d.BatchNorm) else tip_norm.gamma.shape[0]
        self.check(tip_c == c, "trunk tip norm channels != trunk channels", "trunkTip", tip_start)
        tip_act = self.act("trunkTipActivation")
        return d.Trunk(
            name,
            nb,
            c,
            mid,
            reg,
            dil,
            gp,
            norm_kind,
            initial_conv,
            initial_matmul,
            meta,
            blocks,
            tip_norm,
            tip_act,
        )

    def policy(self, trunk_c: int) -> d.PolicyHead:
        start = self.pos
        name = self.name("policyHead.name")
        if self.version >= 17:
            out = self.int_("policyHead.policyOutChannels", 2, 4)
            self.check(
                out in (2, 4),
                f"policyOutChannels must be 2 or 4, found {out}",
                "policyHead.policyOutChannels",
                start,
            )
            for opt in "ABC":
                self.int_(f"policyHead.option{opt} (must be 0)", 0, 0)
        else:
            out = 4 if self.version == 16 else 2 if self.version >= 12 else 1
        h = d.PolicyHead(
            name, out, self.conv("p1Conv"), self.conv("g1Conv"), self.bn("g1BN"), self.act("g1Activation"),
            self.matmul("gpoolToBiasMul"), self.bn("p1BN"), self.act("p1Activation"), self.conv("p2Conv"),
            self.matmul("gpoolToPassMul"),
        )  # fmt: skip
        if self.version >= 15:
            h.gpool_to_pass_bias = self.matbias("gpoolToPassBias")
            h.pass_act = self.act("passActivation")
            h.gpool_to_pass_mul2 = self.matmul("gpoolToPassMul2")
        g1 = h.g1_bn.channels
        self.check(
            h.p1_conv.in_channels == trunk_c and h.g1_conv.in_channels == trunk_c,
            "head in != trunk",
            name,
            start,
        )
        self.check(h.p1_conv.out_channels == h.p1_bn.channels, "p1Conv/p1BN mismatch", name, start)
        self.check(h.g1_conv.out_channels == g1, "g1Conv/g1BN mismatch", name, start)
        self.check(h.gpool_to_bias_mul.in_channels == 3 * g1, "gpoolToBiasMul in != 3*g1", name, start)
        self.check(
            h.gpool_to_bias_mul.out_channels == h.p1_bn.channels, "gpoolToBiasMul out mismatch", name, start
        )
        self.check(h.p2_conv.in_channels == h.p1_bn.channels, "p2Conv in mismatch", name, start)
        self.check(h.p2_conv.out_channels == out, f"p2Conv out != {out}", name, start)
        self.check(h.gpool_to_pass_mul.in_channels == 3 * g1, "gpoolToPassMul in != 3*g1", name, start)
        if self.version >= 15:
            assert h.gpool_to_pass_bias is not None and h.gpool_to_pass_mul2 is not None
            mid = h.gpool_to_pass_mul.out_channels
            self.check(h.gpool_to_pass_bias.bias.shape[0] == mid, "gpoolToPassBias mismatch", name, start)
            self.check(h.gpool_to_pass_mul2.in_channels == mid, "gpoolToPassMul2 in mismatch", name, start)
            self.check(h.gpool_to_pass_mul2.out_channels == out, f"gpoolToPassMul2 out != {out}", name, start)
        else:
            self.check(h.gpool_to_pass_mul.out_channels == out, f"gpoolToPassMul out != {out}", name, start)
        return h

    def value(self, trunk_c: int) -> d.ValueHead:
        start = self.pos
        name = self.name("valueHead.name")
        if self.version >= 17:
            for opt in "ABC":
                self.int_(f"valueHead.option{opt} (must be 0)", 0, 0)
        h = d.ValueHead(
            name, self.conv("v1Conv"), self.bn("v1BN"), self.act("v1Activation"), self.matmul("v2Mul"),
            self.matbias("v2Bias"), self.act("v2Activation"), self.matmul("v3Mul"), self.matbias("v3Bias"),
            self.matmul("sv3Mul"), self.matbias("sv3Bias"), self.conv("vOwnershipConv"),
        )  # fmt: skip
        v1 = h.v1_bn.channels
        v2 = h.v2_mul.out_channels
        s = 6 if self.version >= 9 else 4 if self.version >= 8 else 2 if self.version >= 4 else 1
        self.check(
            h.v1_conv.in_channels == trunk_c and h.v1_conv.out_channels == v1, "v1Conv mismatch", name, start
        )
        self.check(h.v2_mul.in_channels == 3 * v1, "v2Mul in != 3*v1", name, start)
        self.check(
            h.v2_bias.bias.shape[0] == v2 and h.v3_mul.in_channels == v2, "v2/v3 mismatch", name, start
        )
        self.check(
            h.v3_mul.out_channels == 3 and h.v3_bias.bias.shape[0] == 3,
            "value head must output 3",
            name,
            start,
        )
        self.check(h.sv3_mul.in_channels == v2, "sv3Mul in mismatch", name, start)
        self.check(
            h.sv3_mul.out_channels == s and h.sv3_bias.bias.shape[0] == s,
            f"score value head must have {s} channels for model version {self.version}",
            name,
            start,
        )
        self.check(
            h.ownership_conv.in_channels == v1 and h.ownership_conv.out_channels == 1,
            "ownership conv",
            name,
            start,
        )
        return h

    def model(self) -> d.ModelDesc:
        start = self.pos
        name = self.token("model name")
        if not _NAME_RE.match(name):
            self.fail("model name must be 1-96 characters of [A-Za-z0-9_-]", "model name", start)
        vstart = self.pos
        version = self.int_("modelVersion", -(10**9), 10**9)
        if not MIN_VERSION <= version <= MAX_VERSION:
            self.fail(
                f"unsupported model version {version} (supported: {MIN_VERSION}-{MAX_VERSION})",
                "modelVersion",
                vstart,
            )
        self.version = version
        n_in = self.int_("numInputChannels", 1, 1024)
        n_glob = self.int_("numInputGlobalChannels", 1, 1024)
        multipliers = d.DEFAULT_MULTIPLIERS
        multiplier_tokens = None
        if version >= 13:
            vals = [self.float_token(n) for n in d.MULTIPLIER_NAMES]
            multipliers = tuple(v for v, _ in vals)
            multiplier_tokens = tuple(t for _, t in vals)
        meta_version = 0
        prefer_pa = False
        if version >= 15:
            meta_version = self.int_("metaEncoderVersion", 0, 1)
            prefer_pa = bool(self.int_("preferPassAliveUnderSuicideRules", 0, 1))
            for opt in "CDEFGH":
                self.int_(f"model option{opt} (must be 0)", 0, 0)
        trunk = self.trunk(meta_version, n_in, n_glob)
        policy = self.policy(trunk.channels)
        value = self.value(trunk.channels)
        tail = self.buf[self.pos :]
        if tail.strip(_WS):
            self.fail("unexpected data after the value head", "end of file")
        return d.ModelDesc(
            name=name,
            version=version,
            num_input_channels=n_in,
            num_input_global_channels=n_glob,
            trunk=trunk,
            policy=policy,
            value=value,
            multipliers=multipliers,
            multiplier_tokens=multiplier_tokens,
            meta_encoder_version=meta_version,
            prefer_pass_alive_under_suicide=prefer_pa,
        )


def _block_io_channels(block: d.Block) -> tuple[int, int]:
    if isinstance(block, (d.OrdinaryBlock, d.GPoolBlock)):
        return block.pre_bn.channels, block.final_conv.out_channels
    if isinstance(block, d.NestedBottleneckBlock):
        return block.pre_bn.channels, block.post_conv.out_channels
    if isinstance(block, d.AttentionBlock):
        return block.q_proj.in_channels, block.out_proj.out_channels
    return block.channels, block.linear2.out_channels


__all__ = ["load_model", "parse_model", "read_model_bytes"]
