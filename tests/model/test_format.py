"""The weight codec: exact round trips for every version family and block kind, and clean errors on bad files."""

from __future__ import annotations

import dataclasses
import gzip
import random

import numpy as np
import pytest

from katadeploy.errors import ModelFormatError
from katadeploy.model import desc as d
from katadeploy.model.format import load_model, parse_model
from katadeploy.model.synthetic import random_model
from katadeploy.model.writer import model_to_bytes, save_model
from tests.conftest import SMALL_NETS, small_net_path


def assert_identical(a, b, path="model"):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype, path
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), f"{path} differs"
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            assert_identical(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.parametrize("stem", sorted(SMALL_NETS))
@pytest.mark.parametrize("suffix", [".bin.gz", ".txt.gz", ".bin", ".txt"])
def test_real_small_net_round_trip(stem, suffix, tmp_path):
    model = load_model(small_net_path(stem))
    out = save_model(model, tmp_path / f"net{suffix}")
    assert_identical(model, load_model(out))


def test_real_small_nets_headers():
    m = load_model(small_net_path("g170-b6c96-s175395328-d26788732"))
    assert (
        m.version,
        m.trunk.channels,
        len(m.trunk.blocks),
        m.num_policy_channels,
        m.num_score_channels,
    ) == (8, 96, 6, 1, 4)
    assert m.trunk.initial_conv.weight.shape == (96, 22, 5, 5)
    t = load_model(small_net_path("b7c96h6kv3qk32v16tflrs-fson-bnh"))
    attn = [b for b in t.iter_blocks() if isinstance(b, d.AttentionBlock)]
    assert attn and all(
        (a.num_heads, a.num_kv_heads, a.q_head_dim, a.v_head_dim) == (6, 3, 32, 16) for a in attn
    )
    assert all(a.learnable_rope for a in attn)
    f = load_model(small_net_path("b7c96h3tfrs-test5-cnorm"))
    assert all(
        a.use_rope and not a.learnable_rope for a in f.iter_blocks() if isinstance(a, d.AttentionBlock)
    )
    assert isinstance(f.trunk.tip_norm, d.RMSNorm)


SYNTHETIC = [
    (3, "ordinary,gpool", "bn", {}),
    (4, "ordinary,gpool", "bn", {}),
    (5, "ordinary", "bn", {}),
    (6, "gpool", "bn", {}),
    (7, "ordinary", "bn", {}),
    (8, "ordinary,gpool,ordinary", "bn", {}),
    (9, "gpool,ordinary", "bn", {}),
    (10, "ordinary", "bn", {}),
    (11, "nested(ordinary,gpool)", "bn", {"activation": "ACTIVATION_MISH"}),
    (12, "nested(ordinary,ordinary),gpool", "bn", {}),
    (13, "nested(gpool,nested(ordinary))", "bn", {"activation": "ACTIVATION_SILU"}),
    (14, "nested(ordinary,gpool),ordinary", "bn", {}),
    (15, "nested(attn:h2:q8:rope=learn,ffn)", "rms-spatial", {"activation": "ACTIVATION_SILU"}),
    (15, "ordinary,gpool", "bn", {"meta": True}),
    (16, "attn:h4:kv2:q8:v4:rope=fixed,ffn,gpool", "rms", {}),
    (17, "attn:h6:kv3:q8:v4:rope=learn,ffn,attn:rope=none,ffn", "bn", {"policy_channels": 4}),
    (
        17,
        "nested(attn:h2:q8:rope=fixed,ffn,attn:h2:q8,ffn),nested(ordinary,gpool)",
        "rms-spatial",
        {"policy_channels": 2, "activation": "ACTIVATION_IDENTITY"},
    ),
]


@pytest.mark.parametrize("version,blocks,tip,kw", SYNTHETIC)
@pytest.mark.parametrize("binary", [True, False])
def test_synthetic_round_trip(version, blocks, tip, kw, binary):
    model = random_model(version, blocks, 12, tip=tip, seed=version, **kw)
    data = model_to_bytes(model, binary)
    back = parse_model(data, binary)
    assert_identical(model, back)
    assert model_to_bytes(back, binary) == data


# ---------------------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def small_bin() -> bytes:
    return gzip.decompress(small_net_path("g170-b6c96-s175395328-d26788732").read_bytes())


def test_truncation_at_many_offsets(small_bin, tmp_path):
    rng = random.Random(0)
    header_end = small_bin.index(b"@BIN@") + 50
    offsets = list(range(0, header_end)) + sorted(rng.sample(range(header_end, len(small_bin) - 1), 150))
    for off in offsets:
        with pytest.raises(ModelFormatError) as info:
            parse_model(small_bin[:off], binary=True)
        assert info.value.offset is not None and info.value.field, off


def test_truncated_gzip_file(tmp_path):
    raw = small_net_path("g170-b6c96-s175395328-d26788732").read_bytes()
    for off in (0, 5, 11, 100, len(raw) // 2, len(raw) - 4):
        p = tmp_path / "t.bin.gz"
        p.write_bytes(raw[:off])
        with pytest.raises(ModelFormatError):
            load_model(p)


def test_flipped_bytes_in_gzip_are_caught(tmp_path):
    raw = bytearray(small_net_path("g170-b6c96-s175395328-d26788732").read_bytes())
    rng = random.Random(1)
    for off in rng.sample(range(20, len(raw) - 8), 40):
        bad = bytearray(raw)
        bad[off] ^= 0xFF
        p = tmp_path / "f.bin.gz"
        p.write_bytes(bytes(bad))
        with pytest.raises(ModelFormatError):  # deflate or CRC-32 catches every flip in the body
            load_model(p)


def test_flipped_bytes_in_stream_never_crash(small_bin):
    rng = random.Random(2)
    for off in rng.sample(range(len(small_bin) - 1), 300):
        bad = bytearray(small_bin)
        bad[off] ^= 0x5A
        try:
            parse_model(
                bytes(bad), binary=True
            )  # a flip inside float data or a layer name can give a valid net
        except ModelFormatError as exc:
            assert exc.offset is not None


def test_flipped_digits_in_structure_are_rejected(small_bin):
    # every digit of every size/count token before the first weights is structural: flipping it must be caught
    head = small_bin[: small_bin.index(b"@BIN@")]
    digits, pos = [], 0
    for tok in head.split(b"\n"):
        if tok.isdigit():  # sizes and counts, not layer names such as "conv1"
            digits.extend(range(pos, pos + len(tok)))
        pos += len(tok) + 1
    assert len(digits) > 20
    for off in digits:
        bad = bytearray(small_bin)
        bad[off] ^= 0x5A  # digit -> letter
        with pytest.raises(ModelFormatError):
            parse_model(bytes(bad), binary=True)


def test_wrong_versions(small_bin):
    lines = small_bin.split(b"\n", 2)
    for v in (b"-1", b"0", b"2", b"18", b"99", b"1e3", b"eight"):
        with pytest.raises(ModelFormatError) as info:
            parse_model(b"\n".join([lines[0], v, lines[2]]), binary=True)
        assert info.value.field == "modelVersion"


def test_absurd_channel_count_is_rejected_before_allocating(small_bin):
    # trunk header: "trunk" numBlocks C ... then initial conv "name ky kx ic oc ..."
    text = small_bin[: small_bin.index(b"@BIN@")].decode()
    conv_name_at = text.index("\n", text.index("trunk")) + 1
    parts = text.split("\n")
    idx = parts.index("trunk")
    parts[idx + 2] = "1000000000"  # trunkNumChannels: out of range
    with pytest.raises(ModelFormatError) as info:
        parse_model("\n".join(parts).encode() + small_bin[len(text) :], binary=True)
    assert "trunkNumChannels" in info.value.field
    # an in-range but huge conv claims more floats than the file holds
    model = random_model(8, "ordinary", 8)
    data = model_to_bytes(model, True)
    head = data.index(b"@BIN@")
    fields = data[:head].split(b"\n")
    i = fields.index(b"trunk") + 7  # initial conv name
    fields[i + 3] = b"60000"  # inChannels
    fields[i + 4] = b"60000"  # outChannels
    del conv_name_at
    with pytest.raises(ModelFormatError) as info:
        parse_model(b"\n".join(fields) + data[head:], binary=True)
    assert "floats" in str(info.value)


def test_non_finite_weights_are_rejected():
    model = random_model(14, "ordinary", 8)
    model.trunk.blocks[0].regular_conv.weight[0, 0, 1, 1] = np.nan
    with pytest.raises(ModelFormatError, match="non-finite"):
        parse_model(model_to_bytes(model, True), binary=True)
    model.trunk.blocks[0].regular_conv.weight[0, 0, 1, 1] = np.inf
    with pytest.raises(ModelFormatError, match="non-finite"):
        parse_model(model_to_bytes(model, False), binary=False)


def test_mismatched_channels_are_rejected():
    model = random_model(14, "ordinary,gpool", 8)
    blk = model.trunk.blocks[0]
    blk.mid_bn = dataclasses.replace(blk.mid_bn, mean=blk.mid_bn.mean[:4], variance=blk.mid_bn.variance[:4],
                                     scale=blk.mid_bn.scale[:4], bias=blk.mid_bn.bias[:4])  # fmt: skip
    with pytest.raises(ModelFormatError, match="midBN"):
        parse_model(model_to_bytes(model, True), binary=True)


def test_wrong_tokens_and_modes(tmp_path):
    model = random_model(14, "ordinary", 8)
    data = model_to_bytes(model, True)
    with pytest.raises(ModelFormatError):
        parse_model(data, binary=False)  # a .bin read as text
    with pytest.raises(ModelFormatError, match="BIN"):
        parse_model(model_to_bytes(model, False), binary=True)  # a .txt read as binary
    bad = data.replace(b"ordinary_block", b"mystery_block", 1)
    with pytest.raises(ModelFormatError, match="unknown block kind"):
        parse_model(bad, binary=True)
    bad = data.replace(b"ACTIVATION_MISH", b"ACTIVATION_GELU", 1)
    with pytest.raises(ModelFormatError, match="unknown activation"):
        parse_model(bad, binary=True)
    with pytest.raises(ModelFormatError, match="model name"):
        parse_model(b"bad/name\n14\n", binary=True)
    with pytest.raises(ModelFormatError, match="after the value head"):
        parse_model(data + b"junk\n", binary=True)
    (tmp_path / "x.onnx").write_bytes(b"")
    with pytest.raises(ModelFormatError, match="file name"):
        load_model(tmp_path / "x.onnx")
    (tmp_path / "x.bin.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ModelFormatError, match="gzip"):
        load_model(tmp_path / "x.bin.gz")


def test_ambiguous_gz_suffix_falls_back_to_text(tmp_path):
    model = random_model(9, "ordinary", 8)
    p = tmp_path / "net.gz"
    p.write_bytes(gzip.compress(model_to_bytes(model, False)))
    assert_identical(model, load_model(p))


def test_gzip_bomb_is_refused(tmp_path):
    p = tmp_path / "bomb.bin.gz"
    p.write_bytes(gzip.compress(b"a" * (200 << 20), compresslevel=9))
    with pytest.raises(ModelFormatError, match="decompressed size"):
        load_model(p)
