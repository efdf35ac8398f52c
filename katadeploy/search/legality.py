"""The legal-move mask of a policy, fast: ``history.is_legal`` for every tensor entry, as nneval applies it.

Contract: :func:`legal_mask` equals :func:`katadeploy.go.features.legal_policy_mask` (bool ``[nn_y*nn_x + 1]``,
pass last, off-board entries illegal) for every history; in the main phase it checks empty points, the simple-ko
point, superko bans and the suicide rule inline instead of calling ``is_legal`` per point, and it falls back to
``legal_policy_mask`` in encore phases (ko-recapture rules) or when ``pla`` is not the history's next player.
"""

from __future__ import annotations

import numpy as np

from katadeploy.go import board as B
from katadeploy.go.features import legal_policy_mask, tensor_positions
from katadeploy.go.history import BoardHistory


def legal_mask(hist: BoardHistory, pla: int, nn_x: int, nn_y: int) -> np.ndarray:
    if hist.encore_phase > 0 or pla != hist.presumed_next_move_pla:
        return legal_policy_mask(hist, pla, nn_x, nn_y)
    board = hist.board
    colors = board.colors
    adj4 = board.adj4
    head = board.chain_head
    libs = board.chain_libs
    ko = board.ko_loc
    banned = hist.super_ko_banned
    msl = hist.rules.multi_stone_suicide_legal
    opp = pla ^ 3
    pos_of = tensor_positions(board.x_size, board.y_size, nn_x, nn_y)
    mask = np.zeros(nn_x * nn_y + 1, dtype=bool)
    idx = []
    for loc in board.onboard_locs:
        if colors[loc] != B.C_EMPTY or loc == ko or banned[loc]:
            continue
        for adj in adj4[loc]:
            c = colors[adj]
            if c == B.C_EMPTY:
                break
            if c == pla:
                if msl or libs[head[adj]] > 1:
                    break
            elif c == opp and libs[head[adj]] == 1:
                break
        else:
            continue
        idx.append(pos_of[loc])
    mask[idx] = True
    mask[-1] = hist.is_legal(B.PASS_LOC, pla)
    return mask
