"""KataGo's V7 neural-net input features (a port of the behaviour of ``NNInputs::fillRowV7``, ``nninputs.cpp``).

Contract
--------
* :func:`encode_v7` returns ``(spatial, global)``: float32 arrays ``[22, nn_y_len, nn_x_len]`` and ``[19]``,
  NCHW, symmetry 0 (the caller applies symmetries to the tensors). ``pos = y*nn_x_len + x`` with ``y = 0`` the
  top row. A board smaller than the tensor sits in the top-left corner; channel 0 is the on-board mask and every
  off-board entry is 0. All values are relative to ``next_player`` (pla) and the opponent (opp).
* :class:`NNInputParams` mirrors KataGo's ``MiscNNInputParams`` fields that change features; its defaults are the
  ones ``kata-raw-nn`` uses (draw utility 0.5, no conservative pass, no passing hacks, PDA 0, maxHistory 1000).
* ``prefer_pass_alive_under_suicide`` is the model header flag ``preferPassAliveUnderSuicideRules``: with KataGo's
  default ``alwaysComputePassAliveUnderSuicideRules = auto`` it makes the area channels (18/19) use pass-alive
  computed as if multi-stone suicide were legal. ``NNInputParams.pass_alive_suicide_rules_override`` (0/1) wins.
* :func:`legal_policy_mask` is ``history.is_legal`` for every policy entry (``nn_y_len*nn_x_len + 1``, pass last;
  off-board entries are illegal), i.e. which entries nneval keeps before the softmax.
* :func:`encode_batch` stacks several positions into ``[N,22,H,W]`` / ``[N,19]``.

Ladder results are cached in a small LRU keyed by the complete board state (stones, ko point and KataGo's chain
lists, which fix the search order), so consecutive positions of one game reuse the work for the 1- and 2-moves-ago
ladder channels without any change in results.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from katadeploy.go import board as B
from katadeploy.go import rules as R
from katadeploy.go.board import get_opp
from katadeploy.go.history import BoardHistory

NUM_SPATIAL_V7 = 22
NUM_GLOBAL_V7 = 19
KOMI_CLIP_RADIUS = 20.0

PASS_LOC: int = B.PASS_LOC
NULL_LOC: int = B.NULL_LOC
C_EMPTY: int = B.C_EMPTY
C_BLACK: int = B.C_BLACK
C_WHITE: int = B.C_WHITE

_f32 = np.float32


@dataclass(frozen=True)
class NNInputParams:
    """The ``MiscNNInputParams`` that affect V7 features. Defaults are those of GTP ``kata-raw-nn``."""

    draw_equivalent_wins_for_white: float = 0.5
    conservative_pass_and_is_root: bool = False
    enable_passing_hacks: bool = False
    playout_doubling_advantage: float = 0.0
    max_history: int = 1000
    #: -1: no override; 0/1: force ``alwaysComputePassAliveUnderSuicideRules`` off/on for featurization.
    pass_alive_suicide_rules_override: int = -1


DEFAULT_PARAMS = NNInputParams()


# ---------------------------------------------------------------------------------------------------- geometry
class _Geometry:
    """Per (board size, tensor size): on-board locs and their tensor positions."""

    __slots__ = ("locs", "pos_of_loc", "mask_idx", "loc_of_pos")

    def __init__(self, x_size: int, y_size: int, nn_x: int, nn_y: int) -> None:
        stride = x_size + 1
        arr = (x_size + 1) * (y_size + 2) + 1
        self.locs: list[int] = []
        self.pos_of_loc: list[int] = [-1] * arr
        self.loc_of_pos: list[int] = [NULL_LOC] * (nn_x * nn_y)
        for y in range(y_size):
            for x in range(x_size):
                loc = (x + 1) + (y + 1) * stride
                pos = y * nn_x + x
                self.locs.append(loc)
                self.pos_of_loc[loc] = pos
                self.loc_of_pos[pos] = loc
        self.mask_idx = np.array([self.pos_of_loc[loc] for loc in self.locs], dtype=np.intp)


_GEOMETRY: dict[tuple[int, int, int, int], _Geometry] = {}


def _geometry(x_size: int, y_size: int, nn_x: int, nn_y: int) -> _Geometry:
    key = (x_size, y_size, nn_x, nn_y)
    g = _GEOMETRY.get(key)
    if g is None:
        g = _GEOMETRY[key] = _Geometry(x_size, y_size, nn_x, nn_y)
    return g


def tensor_positions(x_size: int, y_size: int, nn_x: int, nn_y: int) -> list[int]:
    """``pos_of_loc``: the tensor position (``y * nn_x + x``) of every on-board loc of an ``x_size`` x ``y_size``
    board (-1 elsewhere); shared, never modify it."""
    return _geometry(x_size, y_size, nn_x, nn_y).pos_of_loc


# ---------------------------------------------------------------------------------------------------- ladders
_LADDER_CACHE: OrderedDict[tuple, tuple[tuple[int, ...], tuple[int, ...]]] = OrderedDict()
_LADDER_CACHE_SIZE = 256
_LADDER_LOCK = threading.Lock()


def ladder_locs(board: B.Board) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """KataGo's ``iterLadders``: (stones in ladder-capturable chains with 1 or 2 liberties,
    working first moves of the attacker against laddered 2-liberty chains of the *opponent of each chain*).

    The second element lists ``(chain_color, working_move)`` pairs flattened as ``c0, m0, c1, m1, ...`` so that
    channel 17 can select the chains of the opponent of the player to move.
    """
    # The search result depends on the stones, the ko point and (through liberty order) the chain lists, so the
    # key holds all of them: a hit is exactly what a fresh search would return.
    key = (
        board.x_size,
        board.y_size,
        board.ko_loc,
        board.pos_hash,
        tuple(board.colors),
        tuple(board.next_in_chain),
        tuple(board.chain_head),
    )
    with _LADDER_LOCK:
        hit = _LADDER_CACHE.get(key)
        if hit is not None:
            _LADDER_CACHE.move_to_end(key)
            return hit
    colors = board.colors
    laddered: list[int] = []
    working: list[int] = []
    for loc, moves in B.iter_ladders(board):
        laddered.append(loc)
        for m in moves:
            working.append(colors[loc])
            working.append(m)
    result = (tuple(laddered), tuple(working))
    with _LADDER_LOCK:
        _LADDER_CACHE[key] = result
        while len(_LADDER_CACHE) > _LADDER_CACHE_SIZE:
            _LADDER_CACHE.popitem(last=False)
    return result


# ---------------------------------------------------------------------------------------------------- komi
def _komi_features(
    self_komi: np.float32, x_size: int, y_size: int, parity_applies: bool
) -> tuple[float, float]:
    """Global 5 (clipped selfKomi/20) and global 18 (the komi parity triangle wave) in float32, as KataGo."""
    b_area = _f32(x_size * y_size)
    clip = _f32(KOMI_CLIP_RADIUS)
    if self_komi > b_area + clip:
        self_komi = b_area + clip
    if self_komi < -b_area - clip:
        self_komi = -b_area - clip
    g5 = float(self_komi / _f32(20.0))
    wave = 0.0
    if parity_applies:
        two = _f32(2.0)
        if (x_size * y_size) % 2 == 0:
            komi_floor = _f32(math.floor(self_komi / two)) * two
        else:
            komi_floor = _f32(math.floor((self_komi - _f32(1.0)) / two)) * two + _f32(1.0)
        delta = _f32(self_komi - komi_floor)
        if delta < 0:
            delta = _f32(0.0)
        if delta > 2:
            delta = _f32(2.0)
        if delta < 0.5:
            wave = float(delta)
        elif delta < 1.5:
            wave = float(_f32(1.0) - delta)
        else:
            wave = float(delta - two)
    return g5, wave


def self_komi_f32(hist: BoardHistory, pla: int, draw_equivalent_wins_for_white: float) -> np.float32:
    """``BoardHistory::currentSelfKomi`` evaluated in float32 like the C++."""
    adj = (
        _f32(draw_equivalent_wins_for_white - 0.5) if hist.rules.game_result_will_be_integer() else _f32(0.0)
    )
    w = _f32(hist.white_bonus_score) + _f32(hist.white_handicap_bonus_score)
    w = _f32(w + _f32(hist.rules.komi))
    w = _f32(w + adj)
    return w if pla == C_WHITE else _f32(-w)


# ---------------------------------------------------------------------------------------------------- encoder
def encode_v7(
    history: BoardHistory,
    next_player: int,
    nn_x_len: int = 19,
    nn_y_len: int = 19,
    params: NNInputParams | None = None,
    *,
    prefer_pass_alive_under_suicide: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """V7 features of ``history.board`` with ``next_player`` to move. Returns ``(spatial[22,H,W], global[19])``."""
    spatial = np.zeros((NUM_SPATIAL_V7, nn_y_len * nn_x_len), dtype=np.float32)
    glob = np.zeros(NUM_GLOBAL_V7, dtype=np.float32)
    fill_v7(history, next_player, nn_x_len, nn_y_len, params, spatial, glob, prefer_pass_alive_under_suicide)
    return spatial.reshape(NUM_SPATIAL_V7, nn_y_len, nn_x_len), glob


def fill_v7(
    hist: BoardHistory,
    next_player: int,
    nn_x_len: int,
    nn_y_len: int,
    params: NNInputParams | None,
    spatial: np.ndarray,
    glob: np.ndarray,
    prefer_pass_alive_under_suicide: bool = False,
) -> None:
    """Fill preallocated zeroed arrays ``spatial[22, nn_y_len*nn_x_len]`` and ``glob[19]`` (see :func:`encode_v7`)."""
    if params is None:
        params = DEFAULT_PARAMS
    board = hist.board
    x_size = board.x_size
    y_size = board.y_size
    if x_size > nn_x_len or y_size > nn_y_len:
        raise ValueError(f"board {x_size}x{y_size} does not fit a {nn_x_len}x{nn_y_len} tensor")
    if next_player != C_BLACK and next_player != C_WHITE:
        raise ValueError(f"bad next player {next_player!r}")
    pla = next_player
    opp = get_opp(pla)
    rules = hist.rules
    geo = _geometry(x_size, y_size, nn_x_len, nn_y_len)
    pos_of = geo.pos_of_loc
    colors = board.colors
    chain_head = board.chain_head
    chain_libs = board.chain_libs

    # Every spatial 1.0 goes through one list of flat indices (channel * area + pos), written at the end.
    area_n = nn_x_len * nn_y_len
    ones: list[int] = []
    add = ones.append

    # Channels 1-5: stones and liberties of their chains.
    o_pla, o_opp = area_n, 2 * area_n
    o_libs = (-1, 3 * area_n, 4 * area_n, 5 * area_n)
    for loc in geo.locs:
        stone = colors[loc]
        if stone == C_EMPTY:
            continue
        pos = pos_of[loc]
        add((o_pla if stone == pla else o_opp) + pos)
        libs = chain_libs[chain_head[loc]]
        if libs <= 3:
            add(o_libs[libs] + pos)

    # Channel 6 (and 7 in the encore): ko bans.
    skb = hist.super_ko_banned
    o6 = 6 * area_n
    if hist.encore_phase == 0:
        ones += [o6 + pos_of[loc] for loc in geo.locs if skb[loc]]
        if board.ko_loc != NULL_LOC:
            add(o6 + pos_of[board.ko_loc])
    else:
        krb = hist.ko_recap_blocked
        o7 = 7 * area_n
        ones += [o6 + pos_of[loc] for loc in geo.locs if skb[loc]]
        ones += [o7 + pos_of[loc] for loc in geo.locs if krb[loc]]

    # Channels 18/19: area by the rules.
    if params.pass_alive_suicide_rules_override >= 0:
        always_suicide = params.pass_alive_suicide_rules_override != 0
    else:
        always_suicide = hist.always_compute_pass_alive_under_suicide_rules or prefer_pass_alive_under_suicide
    sui_for_pass_alive = rules.multi_stone_suicide_legal or always_suicide
    area = None
    group_tax_for_pla = 0
    if rules.scoring_rule == R.SCORING_AREA and rules.tax_rule == R.TAX_NONE:
        area = board.calculate_area(None, True, True, True, sui_for_pass_alive)
    else:
        keep_territories = False
        keep_stones = False
        has_area = False
        if rules.scoring_rule == R.SCORING_AREA and rules.tax_rule in (R.TAX_SEKI, R.TAX_ALL):
            has_area = True
            keep_stones = True
        elif rules.scoring_rule == R.SCORING_TERRITORY and rules.tax_rule == R.TAX_NONE:
            if hist.encore_phase >= 2:
                has_area = True
                keep_territories = True
        elif rules.scoring_rule == R.SCORING_TERRITORY and rules.tax_rule in (R.TAX_SEKI, R.TAX_ALL):
            if hist.encore_phase >= 2:
                has_area = True
        if has_area:
            area, wmb_regions = board.calculate_independent_life_area(
                None, keep_territories, keep_stones, sui_for_pass_alive
            )
            if rules.tax_rule == R.TAX_ALL:
                group_tax_for_pla = -2 * wmb_regions if pla == C_WHITE else 2 * wmb_regions

    final_phase_and_game_end_would_not_be_win = False
    if area is not None:
        score_for_pla = group_tax_for_pla
        o18, o19 = 18 * area_n, 19 * area_n
        territory = rules.scoring_rule == R.SCORING_TERRITORY
        secs = hist.second_encore_start_colors
        for loc in geo.locs:
            a = area[loc]
            if a == C_EMPTY:
                if territory:
                    c = colors[loc]
                    if c == pla and secs[loc] == pla:
                        add(o18 + pos_of[loc])
                        score_for_pla += 1
                    elif c == opp and secs[loc] == opp:
                        add(o19 + pos_of[loc])
                        score_for_pla -= 1
            elif a == pla:
                add(o18 + pos_of[loc])
                score_for_pla += 1
            elif a == opp:
                add(o19 + pos_of[loc])
                score_for_pla -= 1
        sk = self_komi_f32(hist, pla, params.draw_equivalent_wins_for_white)
        if float(_f32(_f32(score_for_pla) + sk)) <= 0.0:
            final_phase_and_game_end_would_not_be_win = True

    # History: how many of the last 5 moves the net may see.
    max_turns = 5
    suppress_pass_would_end_phase = False
    if hist.pass_would_end_game(pla) and (
        params.conservative_pass_and_is_root
        or hist.should_suppress_end_game_from_friendly_pass(pla)
        or (params.enable_passing_hacks and final_phase_and_game_end_would_not_be_win)
    ):
        max_turns = 0
        suppress_pass_would_end_phase = True
    elif hist.is_game_finished or hist.is_past_normal_phase_end:
        max_turns = 1
    max_turns = min(max_turns, params.max_history)

    num_turns_included = 0
    if max_turns > 0:
        mh = hist.move_history
        n = len(mh)
        amount = min(max_turns, hist.num_approx_valid_turns_this_phase, n)
        expected = opp
        for k in range(amount):
            loc, mover = mh[n - 1 - k]
            if mover != expected:
                break
            num_turns_included = k + 1
            if loc == PASS_LOC:
                glob[k] = 1.0
            elif loc != NULL_LOC:
                add((9 + k) * area_n + pos_of[loc])
            expected = pla if expected == opp else opp

    # Ladders: channels 14 (now), 15 (one move ago), 16 (two moves ago), 17 (working ladder starts vs opp chains).
    laddered, working = ladder_locs(board)
    if laddered:
        o14, o17 = 14 * area_n, 17 * area_n
        ones += [o14 + pos_of[loc] for loc in laddered]
        ones += [o17 + pos_of[working[i + 1]] for i in range(0, len(working), 2) if working[i] == opp]
    prev_board = board if num_turns_included < 1 else hist.get_recent_board(1)
    prev_laddered = laddered if prev_board is board else ladder_locs(prev_board)[0]
    if prev_laddered:
        o15 = 15 * area_n
        ones += [o15 + pos_of[loc] for loc in prev_laddered]
    prev_prev_board = prev_board if num_turns_included < 2 else hist.get_recent_board(2)
    if prev_prev_board is prev_board:
        prev_prev_laddered = prev_laddered
    else:
        prev_prev_laddered = ladder_locs(prev_prev_board)[0]
    if prev_prev_laddered:
        o16 = 16 * area_n
        ones += [o16 + pos_of[loc] for loc in prev_prev_laddered]

    # Channels 20/21: stones at the start of the second encore.
    if hist.encore_phase >= 2:
        secs = hist.second_encore_start_colors
        o20, o21 = 20 * area_n, 21 * area_n
        ones += [o20 + pos_of[loc] for loc in geo.locs if secs[loc] == pla]
        ones += [o21 + pos_of[loc] for loc in geo.locs if secs[loc] == opp]

    # Channel 0 (on board) and every index collected above.
    contiguous = spatial.flags.c_contiguous
    # a non-contiguous view goes through a scratch array
    flat = spatial.reshape(-1) if contiguous else np.zeros(NUM_SPATIAL_V7 * area_n, dtype=np.float32)
    flat[geo.mask_idx] = 1.0
    if ones:
        flat[ones] = 1.0
    if not contiguous:
        spatial[...] = flat.reshape(spatial.shape)

    # Globals.
    sk = self_komi_f32(hist, pla, params.draw_equivalent_wins_for_white)
    parity_applies = rules.scoring_rule == R.SCORING_AREA or hist.encore_phase >= 2
    glob[5], glob[18] = _komi_features(sk, x_size, y_size, parity_applies)
    ko = rules.ko_rule
    if ko == R.KO_SIMPLE:
        pass
    elif ko == R.KO_POSITIONAL or ko == R.KO_SPIGHT:
        glob[6] = 1.0
        glob[7] = 0.5
    elif ko == R.KO_SITUATIONAL:
        glob[6] = 1.0
        glob[7] = -0.5
    if rules.multi_stone_suicide_legal:
        glob[8] = 1.0
    if rules.scoring_rule == R.SCORING_TERRITORY:
        glob[9] = 1.0
    if rules.tax_rule == R.TAX_SEKI:
        glob[10] = 1.0
    elif rules.tax_rule == R.TAX_ALL:
        glob[10] = 1.0
        glob[11] = 1.0
    if hist.encore_phase > 0:
        glob[12] = 1.0
    if hist.encore_phase > 1:
        glob[13] = 1.0
    if not suppress_pass_would_end_phase and hist.pass_would_end_phase(pla):
        glob[14] = 1.0
    if params.playout_doubling_advantage != 0:
        glob[15] = 1.0
        glob[16] = float(_f32(0.5 * params.playout_doubling_advantage))
    if hist.has_button:
        glob[17] = 1.0


def legal_policy_mask(
    history: BoardHistory, next_player: int, nn_x_len: int = 19, nn_y_len: int = 19
) -> np.ndarray:
    """Boolean ``[nn_y_len*nn_x_len + 1]``: which policy entries nneval treats as legal (pass is the last).

    This is ``history.is_legal`` for every entry, so everything is illegal unless ``next_player`` is the history's
    ``presumed_next_move_pla`` (KataGo asserts that they match).
    """
    board = history.board
    geo = _geometry(board.x_size, board.y_size, nn_x_len, nn_y_len)
    mask = np.zeros(nn_x_len * nn_y_len + 1, dtype=bool)
    is_legal = history.is_legal
    pos_of = geo.pos_of_loc
    legal = [pos_of[loc] for loc in geo.locs if is_legal(loc, next_player)]
    mask[legal] = True
    mask[-1] = is_legal(PASS_LOC, next_player)
    return mask


def encode_batch(
    items: Iterable[tuple[BoardHistory, int]],
    nn_x_len: int = 19,
    nn_y_len: int = 19,
    params: NNInputParams | None = None,
    *,
    prefer_pass_alive_under_suicide: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``(history, next_player)`` pairs into ``spatial[N,22,H,W]`` and ``global[N,19]``."""
    items = list(items)
    n = len(items)
    spatial = np.zeros((n, NUM_SPATIAL_V7, nn_y_len * nn_x_len), dtype=np.float32)
    glob = np.zeros((n, NUM_GLOBAL_V7), dtype=np.float32)
    for i, (hist, pla) in enumerate(items):
        fill_v7(hist, pla, nn_x_len, nn_y_len, params, spatial[i], glob[i], prefer_pass_alive_under_suicide)
    return spatial.reshape(n, NUM_SPATIAL_V7, nn_y_len, nn_x_len), glob
