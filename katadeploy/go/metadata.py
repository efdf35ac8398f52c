"""The 192-channel SGF-metadata input of KataGo's human-SL nets, and KataGo's named ``humanSLProfile`` values.

Contract: :func:`profile` turns a profile name (``rank_9d``, ``rank_3k_1d``, ``preaz_5k``, ``proyear_1990``, ...)
into :class:`SGFMetadata` exactly as KataGo's ``SGFMetadata::getProfile`` does (unknown names raise
:class:`~katadeploy.errors.PositionError`-style :class:`MetadataError`), and :func:`metadata_row` fills the input row
for the player to move as ``SGFMetadata::fillMetadataRow`` does (float32 ``[192]``).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

import numpy as np

from katadeploy.errors import KatadeployError

NUM_CHANNELS = 192
SOURCE_KGS, SOURCE_GOGOD, SOURCE_GO4GO = 2, 5, 6
_EPOCH = _dt.date(1970, 1, 1)
_RANKS = {f"{9 - i}d": i + 1 for i in range(9)} | {f"{k}k": 9 + k for k in range(1, 21)}


class MetadataError(KatadeployError):
    pass


@dataclass(frozen=True)
class SGFMetadata:
    inverse_b_rank: int = 0  # 9d = 1 ... 1d = 9, 1k = 10, ...
    inverse_w_rank: int = 0
    b_is_unranked: bool = False
    w_is_unranked: bool = False
    b_rank_is_unknown: bool = False
    w_rank_is_unknown: bool = False
    b_is_human: bool = False
    w_is_human: bool = False
    game_is_unrated: bool = False
    game_ratedness_is_unknown: bool = False
    time_control: str = "unknown"  # unknown | none | absolute | simple | byoyomi | canadian | fischer
    main_time_seconds: float = 0.0
    period_time_seconds: float = 0.0
    byo_yomi_periods: int = 0
    canadian_moves: int = 0
    game_date: _dt.date = field(default=_EPOCH)
    source: int = 0


_TIME_CONTROLS = ("unknown", "none", "absolute", "simple", "byoyomi", "canadian", "fischer")


def _rank_profile(b: int, w: int, pre_az: bool) -> SGFMetadata:
    return SGFMetadata(
        inverse_b_rank=b, inverse_w_rank=w, b_is_human=True, w_is_human=True, game_ratedness_is_unknown=True,
        time_control="byoyomi", main_time_seconds=1200, period_time_seconds=30, byo_yomi_periods=5,
        game_date=_dt.date(2016, 9, 1) if pre_az else _dt.date(2020, 3, 1), source=SOURCE_KGS,
    )  # fmt: skip


def profile(name: str) -> SGFMetadata:
    """KataGo's ``SGFMetadata::getProfile``."""
    if name.startswith("proyear_"):
        year_text = name[len("proyear_") :]
        if year_text.lstrip("-").isdigit():
            year = int(year_text)
            if 1800 <= year <= 2023:
                source = SOURCE_GOGOD if year <= 2020 else SOURCE_GO4GO
                return SGFMetadata(inverse_b_rank=1, inverse_w_rank=1, b_is_human=True, w_is_human=True,
                                   time_control="unknown", game_date=_dt.date(year, 6, 1), source=source)  # fmt: skip
    for prefix, pre_az in (("rank_", False), ("preaz_", True)):
        if name.startswith(prefix):
            ranks = name[len(prefix) :]
            if ranks in _RANKS:
                return _rank_profile(_RANKS[ranks], _RANKS[ranks], pre_az)
            pieces = ranks.split("_")
            if len(pieces) == 2 and all(p in _RANKS for p in pieces):
                return _rank_profile(_RANKS[pieces[0]], _RANKS[pieces[1]], pre_az)
    raise MetadataError(
        f"unknown human SL profile {name!r} (expected rank_<r>, rank_<black>_<white>, preaz_<r> with r in 20k..9d, "
        "or proyear_<1800-2023>)"
    )


def metadata_row(meta: SGFMetadata, white_to_move: bool, board_area: int) -> np.ndarray:
    """KataGo's ``SGFMetadata::fillMetadataRow`` for the player to move."""
    row = np.zeros(NUM_CHANNELS, dtype=np.float32)
    pla_w = white_to_move
    pick = (lambda w, b: (w, b)) if pla_w else (lambda w, b: (b, w))
    pla_h, opp_h = pick(meta.w_is_human, meta.b_is_human)
    pla_u, opp_u = pick(meta.w_is_unranked, meta.b_is_unranked)
    pla_k, opp_k = pick(meta.w_rank_is_unknown, meta.b_rank_is_unknown)
    pla_r, opp_r = pick(meta.inverse_w_rank, meta.inverse_b_rank)
    row[0:6] = (pla_h, opp_h, pla_u, opp_u, pla_k, opp_k)
    if not pla_u:
        row[6 : 6 + min(pla_r, 34)] = 1.0
    if not opp_u:
        row[40 : 40 + min(opp_r, 34)] = 1.0
    row[74] = 0.5 if meta.game_ratedness_is_unknown else 1.0 if meta.game_is_unrated else 0.0
    if meta.time_control not in _TIME_CONTROLS:
        raise MetadataError(f"invalid time control {meta.time_control!r}")
    row[75 + _TIME_CONTROLS.index(meta.time_control)] = 1.0
    main = min(max(meta.main_time_seconds, 0.0), 3.0 * 86400)
    period = min(max(meta.period_time_seconds, 0.0), 86400.0)
    row[82] = 0.4 * (math.log(main + 60.0) - 6.5)
    row[83] = 0.3 * (math.log(period + 1.0) - 3.0)
    row[84] = 0.5 * (math.log(min(max(meta.byo_yomi_periods, 0), 50) + 2.0) - 1.5)
    row[85] = 0.25 * (math.log(min(max(meta.canadian_moves, 0), 50) + 2.0) - 1.5)
    row[86] = 0.5 * math.log(board_area / 361.0)
    days = float((meta.game_date - _EPOCH).days)
    period_days = 7.0
    factor = math.pow(80000, 1.0 / 31)
    for i in range(32):
        revolutions = days / period_days
        row[87 + 2 * i] = math.cos(revolutions * 2 * math.pi)
        row[88 + 2 * i] = math.sin(revolutions * 2 * math.pi)
        period_days *= factor
    if not 0 <= meta.source < 16:
        raise MetadataError(f"invalid source {meta.source}")
    row[151 + meta.source] = 1.0
    return row
