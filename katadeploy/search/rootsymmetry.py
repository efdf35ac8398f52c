"""Root symmetry pruning (``rootSymmetryPruning``; ``SymmetryHelpers::markDuplicateMoveLocs`` in nninputs.cpp).

Contract: :func:`root_symmetries` returns ``(symmetries, duplicate_locs)`` for a root position: the board
symmetries (always 0; transposes only on square boards) under which the stones - and in encore phases the ko
recapture blocks and second-encore start colours - are unchanged, none at all when a ko or superko ban is active;
and the set of moves that are symmetric duplicates of an earlier move in KataGo's scan order (columns from the right
for Black, from the left for White). The search never explores a duplicate at the root; the analysis output lists
every duplicate as a copy of its representative with ``isSymmetryOf``. :func:`sym_loc` is ``getSymLoc``.
"""

from __future__ import annotations

from katadeploy.go import board as B
from katadeploy.go.history import BoardHistory


def sym_xy(x: int, y: int, x_size: int, y_size: int, symmetry: int) -> tuple[int, int, int]:
    """(x, y, new x size) of ``(x, y)`` under ``symmetry``."""
    if symmetry & 2:
        x = x_size - x - 1
    if symmetry & 1:
        y = y_size - y - 1
    if symmetry & 4:
        return y, x, y_size
    return x, y, x_size


def sym_loc(loc: int, x_size: int, y_size: int, symmetry: int) -> int:
    if loc in (B.NULL_LOC, B.PASS_LOC):
        return loc
    stride = x_size + 1
    x, y, nx = sym_xy(loc % stride - 1, loc // stride - 1, x_size, y_size, symmetry)
    return (x + 1) + (y + 1) * (nx + 1)


def root_symmetries(hist: BoardHistory) -> tuple[list[int], set[int]]:
    board = hist.board
    xs, ys = board.x_size, board.y_size
    syms = [0]
    if board.ko_loc != B.NULL_LOC or any(hist.super_ko_banned[loc] for loc in board.onboard_locs):
        return syms, set()
    colors = board.colors
    locs = board.onboard_locs
    for s in range(1, 8 if xs == ys else 4):
        ok = True
        for loc in locs:
            other = sym_loc(loc, xs, ys, s)
            if colors[loc] != colors[other]:
                ok = False
            elif hist.encore_phase > 0 and hist.ko_recap_blocked[loc] != hist.ko_recap_blocked[other]:
                ok = False
            elif (
                hist.encore_phase == 2
                and hist.second_encore_start_colors[loc] != hist.second_encore_start_colors[other]
            ):
                ok = False
            if not ok:
                break
        if ok:
            syms.append(s)
    dup: set[int] = set()
    if len(syms) == 1:
        return syms, dup
    if hist.presumed_next_move_pla == B.P_BLACK:
        order = [(x, y) for x in range(xs - 1, -1, -1) for y in range(ys)]
    else:
        order = [(x, y) for x in range(xs) for y in range(ys - 1, -1, -1)]
    for x, y in order:
        loc = (x + 1) + (y + 1) * (xs + 1)
        for s in syms[1:]:
            other = sym_loc(loc, xs, ys, s)
            if loc not in dup and loc != other:
                dup.add(other)
    return syms, dup
