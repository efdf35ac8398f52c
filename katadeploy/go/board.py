"""Go board: a behaviour-exact Python port of KataGo's ``Board`` (v1.17.2, ``cpp/game/board.{h,cpp}``).

Contract
--------
* Locations use KataGo's encoding (see :mod:`katadeploy.go.coords`): ``loc = (x+1) + (y+1)*(x_size+1)``,
  y = 0 is the top row, a one-point wall surrounds the board, ``NULL_LOC = 0``, ``PASS_LOC = 1``.
  Every per-point array of a board has ``arr_size = (x_size+1)*(y_size+2)+1`` entries.
* Colours: ``C_EMPTY = 0``, ``C_BLACK = 1``, ``C_WHITE = 2``, ``C_WALL = 3``; players are ``P_BLACK``/``P_WHITE``
  and ``get_opp(p) == p ^ 3``.
* The method set mirrors ``Board`` in snake_case (``isLegal`` -> :meth:`Board.is_legal`, ...). Results are
  identical to KataGo's, including the parts that depend on internal representation: chains are kept as
  KataGo keeps them (circular ``next_in_chain`` lists, ``chain_head``, per-head liberty/stone counts, the same
  merge order and the same undo rebuilds), so liberty enumeration order, and therefore the ladder search's
  move ordering, node budget and results, match KataGo move for move.
* Hashes are KataGo's own Zobrist values: the tables are regenerated with a port of KataGo's ``Rand``
  seeded exactly as ``Board::initHash()``. A ``Hash128`` is represented as one Python int
  ``(hash1 << 64) | hash0``; ``f"{h:032X}"`` prints it the way KataGo does. :attr:`Board.pos_hash` covers the
  stones and the board size only (not ko, not the player to move); situational/positional superko hashing is
  done by the history layer with :data:`ZOBRIST_PLAYER_HASH` and :meth:`Board.get_pos_hash_after_move`.
* Chain bookkeeping is public for speed: ``chain_head[loc]`` (head of the chain at a stone),
  ``next_in_chain[loc]``, ``chain_libs[head]`` (KataGo ``chain_data[head].num_liberties``) and
  ``chain_locs[head]`` (``num_locs``). Entries for empty/wall points are meaningless.
* Board sizes from 0 to :data:`MAX_LEN` (29) per side are accepted (KataGo's ``COMPILE_MAX_BOARD_LEN``).
* Area functions take a caller-owned ``result`` list (length >= ``arr_size``), fill it completely with
  ``C_EMPTY``/``C_BLACK``/``C_WHITE`` by loc, and also return it.

Like KataGo's, this board knows simple ko only and does not track whose turn it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from itertools import islice

from katadeploy.errors import PositionError
from katadeploy.go.coords import (
    NULL_LOC,
    PASS_LOC,
    Location,
    get_adjacent_offsets,
    get_loc,
    loc_of_string,
    loc_to_string,
    sqrt_board_area,
)

__all__ = [
    "C_EMPTY",
    "C_BLACK",
    "C_WHITE",
    "C_WALL",
    "P_BLACK",
    "P_WHITE",
    "NULL_LOC",
    "PASS_LOC",
    "MAX_LEN",
    "DEFAULT_LEN",
    "MAX_LADDER_SEARCH_NODE_BUDGET",
    "Board",
    "Location",
    "MoveRecord",
    "KataGoRand",
    "get_opp",
    "color_to_char",
    "parse_player",
    "ZOBRIST_PLAYER_HASH",
    "ZOBRIST_ENCORE_HASH",
    "ZOBRIST_BOARD_HASH",
    "ZOBRIST_BOARD_HASH2",
    "ZOBRIST_KO_LOC_HASH",
    "ZOBRIST_KO_MARK_HASH",
    "ZOBRIST_SECOND_ENCORE_START_HASH",
    "ZOBRIST_SIZE_X_HASH",
    "ZOBRIST_SIZE_Y_HASH",
    "ZOBRIST_PASS_ENDS_PHASE",
    "ZOBRIST_GAME_IS_OVER",
    "ensure_zobrist",
    "iter_ladders",
]

C_EMPTY = 0
C_BLACK = 1
C_WHITE = 2
C_WALL = 3
P_BLACK = 1
P_WHITE = 2

#: Largest supported side length (KataGo's compile-time ``COMPILE_MAX_BOARD_LEN``; KataGo's default build
#: uses 19, its "bs29" builds 29). Zobrist tables grow on demand, so this only bounds accepted sizes.
MAX_LEN = 29
DEFAULT_LEN = 19
#: Ladder searches that play this many moves give up and report "not captured".
MAX_LADDER_SEARCH_NODE_BUDGET = 25000

_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1


def get_opp(pla: int) -> int:
    """The other player, as KataGo's ``getOpp``: ``c ^ 3`` (``== 3 - c`` for every colour), so it also maps
    ``C_EMPTY <-> C_WALL``. The one definition in katadeploy (``go.history`` and ``go.features`` use it)."""
    return pla ^ 3


def color_to_char(color: int) -> str:
    """``X`` black, ``O`` white, ``.`` empty, ``#`` anything else."""
    if color == C_BLACK:
        return "X"
    if color == C_WHITE:
        return "O"
    if color == C_EMPTY:
        return "."
    return "#"


def parse_player(text: str) -> int:
    """``b``/``black`` -> ``P_BLACK``, ``w``/``white`` -> ``P_WHITE`` (case-insensitive)."""
    low = text.lower()
    if low in ("b", "black"):
        return P_BLACK
    if low in ("w", "white"):
        return P_WHITE
    raise PositionError(f"Could not parse player: {text}")


# =========================================================================================================
# KataGo's random generator (needed to reproduce its Zobrist tables)


class KataGoRand:
    """Bit-exact port of KataGo's ``Rand`` (xorshift1024* + PCG32 seeded through MD5/SHA-256 of a string).

    Provides the draws KataGo's board code and tests use: :meth:`next_uint`, :meth:`next_uint_below`,
    :meth:`next_int`, :meth:`next_uint64`, :meth:`next_uint64_below`, :meth:`next_double`, :meth:`next_bool`.
    """

    __slots__ = ("_xs", "_xs_idx", "_pcg")

    def __init__(self, seed: str):
        self._xs: list[int] = []
        self._xs_idx = 0
        self._pcg = 0
        self.init(seed)

    def init(self, seed: str) -> None:
        """Reseed exactly as ``Rand::init(const std::string&)``."""
        seed_bytes = seed.encode("utf-8")
        md5_word0 = int.from_bytes(hashlib.md5(seed_bytes).digest()[:4], "little")
        suffix = b"|" + str(md5_word0).encode() + b"|" + seed_bytes
        words: list[int] = []
        counter = 0

        def next_nonzero() -> int:
            nonlocal counter
            while True:
                if not words:
                    digest = hashlib.sha256(str(counter).encode() + suffix).digest()
                    counter += 37
                    words.extend(int.from_bytes(digest[i : i + 8], "big") for i in range(0, 32, 8))
                value = words.pop(0)
                if value != 0:
                    return value

        self._xs = [next_nonzero() for _ in range(16)]
        self._xs_idx = 0
        self._pcg = next_nonzero()

    def next_uint(self) -> int:
        """Uniform 32-bit unsigned integer."""
        # PCG32
        s = (self._pcg * 6364136223846793005 + 1442695040888963407) & _M64
        self._pcg = s
        x = (((s >> 18) ^ s) >> 27) & _M32
        rot = s >> 59
        pcg_out = x if rot == 0 else ((x >> rot) | (x << (32 - rot))) & _M32
        # xorshift1024*
        a = self._xs
        a0 = a[self._xs_idx]
        idx = (self._xs_idx + 1) & 15
        self._xs_idx = idx
        a1 = a[idx]
        a1 ^= (a1 << 31) & _M64
        a1 ^= a1 >> 11
        a0 ^= a0 >> 30
        a[idx] = a0 ^ a1
        xs_out = ((a[idx] * 1181783497276652981) & _M64) >> 32
        return (pcg_out + xs_out) & _M32

    def next_uint_below(self, n: int) -> int:
        """Uniform integer in ``[0, n)`` (KataGo ``nextUInt(n)``, same rejection rule)."""
        while True:
            bits = self.next_uint()
            val = bits % n
            if ((bits - val + (n - 1)) & _M32) >= ((bits - val) & _M32):
                return val

    def next_uint64(self) -> int:
        """Uniform 64-bit unsigned integer (low word drawn first)."""
        lower = self.next_uint()
        upper = self.next_uint()
        return lower | (upper << 32)

    def next_uint64_below(self, n: int) -> int:
        """Uniform integer in ``[0, n)`` for 64-bit ``n`` (KataGo ``nextUInt64(n)``)."""
        while True:
            bits = self.next_uint64()
            val = bits % n
            if ((bits - val + (n - 1)) & _M64) >= ((bits - val) & _M64):
                return val

    def next_double(self) -> float:
        """Uniform double in ``[0, 1)`` with 53 random bits (KataGo ``nextDouble()``)."""
        return (self.next_uint64() & ((1 << 53) - 1)) / float(1 << 53)

    def next_bool(self, prob: float) -> bool:
        """True with probability ``prob`` (KataGo ``nextBool``)."""
        return self.next_double() < prob

    def next_int(self, a: int, b: int) -> int:
        """Uniform integer in ``[a, b]`` (KataGo ``nextInt(a, b)``, 32-bit wraparound included)."""
        span = (b - a + 1) & _M32
        value = self.next_uint() if span == 0 else (self.next_uint_below(span) + (a & _M32)) & _M32
        return value - (1 << 32) if value >= (1 << 31) else value


def _murmur_mix(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _M64
    x ^= x >> 33
    return x


def _split_mix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _next_hash(rand: KataGoRand) -> int:
    h0 = rand.next_uint64()
    h1 = rand.next_uint64()
    return (h1 << 64) | h0


# =========================================================================================================
# Zobrist tables (KataGo's exact values, generated lazily in KataGo's order)

#: Indexed by player (0..3).
ZOBRIST_PLAYER_HASH: list[int] = []
#: Indexed by encore phase (0..2).
ZOBRIST_ENCORE_HASH: list[int] = []
#: ``[loc][color]``; zero for ``C_EMPTY``/``C_WALL``.
ZOBRIST_BOARD_HASH: list[tuple[int, int, int, int]] = []
#: ``[loc][color]``, the second, differently mixed set.
ZOBRIST_BOARD_HASH2: list[tuple[int, int, int, int]] = []
#: ``[loc]``.
ZOBRIST_KO_LOC_HASH: list[int] = []
#: ``[loc][color]``; zero for ``C_EMPTY``/``C_WALL``.
ZOBRIST_KO_MARK_HASH: list[tuple[int, int, int, int]] = []
#: ``[loc][color]``; zero for ``C_EMPTY``/``C_WALL``.
ZOBRIST_SECOND_ENCORE_START_HASH: list[tuple[int, int, int, int]] = []
#: Indexed by side length.
ZOBRIST_SIZE_X_HASH: list[int] = []
ZOBRIST_SIZE_Y_HASH: list[int] = []
ZOBRIST_PASS_ENDS_PHASE = (0xE3153DEF9E14A62C << 64) | 0x853E097C279EBF4E
ZOBRIST_GAME_IS_OVER = (0xF1D583D960A4CE7F << 64) | 0xB6F9E465597A77EE

# Per colour fast views of ZOBRIST_BOARD_HASH: _ZB[color][loc].
_ZB: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])

_rand_main = KataGoRand("Board::initHash()")
_rand_encore = KataGoRand("Board::initHash() for ZOBRIST_SECOND_ENCORE_START hashes")
_rand_size = KataGoRand("Board::initHash() for ZOBRIST_SIZE hashes")
_rand_hash2 = KataGoRand("Board::initHash() for second set of ZOBRIST hashes")

for _i in range(4):
    ZOBRIST_PLAYER_HASH.append(_next_hash(_rand_main))
for _i in range(3):
    ZOBRIST_ENCORE_HASH.append(_next_hash(_rand_main))


def _stone_pair_hashes(rand: KataGoRand) -> tuple[int, int, int, int]:
    return (0, _next_hash(rand), _next_hash(rand), 0)


def ensure_zobrist(arr_size: int, max_side: int) -> None:
    """Grow the Zobrist tables to cover locs ``< arr_size`` and side lengths ``<= max_side``.

    Values never change once generated (each table is a prefix-stable stream), so they equal KataGo's for
    every board KataGo supports.
    """
    while len(ZOBRIST_BOARD_HASH) < arr_size:
        board_row = [0, 0, 0, 0]
        ko_mark_row = [0, 0, 0, 0]
        for color in (C_BLACK, C_WHITE):
            # KataGo interleaves the two tables per colour.
            board_row[color] = _next_hash(_rand_main)
            ko_mark_row[color] = _next_hash(_rand_main)
        ZOBRIST_BOARD_HASH.append(tuple(board_row))  # type: ignore[arg-type]
        ZOBRIST_KO_MARK_HASH.append(tuple(ko_mark_row))  # type: ignore[arg-type]
        ZOBRIST_KO_LOC_HASH.append(_next_hash(_rand_main))
        for color in range(4):
            _ZB[color].append(board_row[color])
        ZOBRIST_SECOND_ENCORE_START_HASH.append(_stone_pair_hashes(_rand_encore))
        row2 = []
        for _color in range(4):
            h = _next_hash(_rand_hash2)
            h0 = _murmur_mix(h & _M64)
            h1 = _split_mix64(h >> 64)
            row2.append((h1 << 64) | h0)
        ZOBRIST_BOARD_HASH2.append(tuple(row2))  # type: ignore[arg-type]
    while len(ZOBRIST_SIZE_X_HASH) < max_side + 1:
        ZOBRIST_SIZE_X_HASH.append(_next_hash(_rand_size))
        ZOBRIST_SIZE_Y_HASH.append(_next_hash(_rand_size))


ensure_zobrist((DEFAULT_LEN + 1) * (DEFAULT_LEN + 2) + 1, DEFAULT_LEN)


# =========================================================================================================
# Per-size geometry, shared by all boards of one size


class _Geometry:
    __slots__ = (
        "x_size",
        "y_size",
        "arr_size",
        "adj_offsets",
        "adj4",
        "onboard",
        "empty_colors",
        "base_hash",
    )

    def __init__(self, x_size: int, y_size: int):
        self.x_size = x_size
        self.y_size = y_size
        self.arr_size = (x_size + 1) * (y_size + 2) + 1
        self.adj_offsets = get_adjacent_offsets(x_size)
        w = x_size + 1
        #: adj4[loc]: the 4 orthogonal neighbours in KataGo's order (only meaningful for on-board locs).
        self.adj4 = [(loc - w, loc - 1, loc + 1, loc + w) for loc in range(self.arr_size)]
        #: On-board locs in row-major order (top row first), the scan order KataGo uses everywhere.
        self.onboard = tuple(get_loc(x, y, x_size) for y in range(y_size) for x in range(x_size))
        colors = [C_WALL] * self.arr_size
        for loc in self.onboard:
            colors[loc] = C_EMPTY
        self.empty_colors = colors
        ensure_zobrist(self.arr_size, max(x_size, y_size))
        self.base_hash = ZOBRIST_SIZE_X_HASH[x_size] ^ ZOBRIST_SIZE_Y_HASH[y_size]


_GEOMETRIES: dict[tuple[int, int], _Geometry] = {}


def _geometry(x_size: int, y_size: int) -> _Geometry:
    geo = _GEOMETRIES.get((x_size, y_size))
    if geo is None:
        geo = _Geometry(x_size, y_size)
        _GEOMETRIES[(x_size, y_size)] = geo
    return geo


#: ``(pla, loc, ko_loc, cap_dirs)``: what :meth:`Board.undo` needs. Bits 0-3 of ``cap_dirs`` mark the
#: directions (``adj_offsets`` order) in which an opponent chain was captured; ``0x10`` marks a suicide.
MoveRecord = tuple[int, int, int, int]


# =========================================================================================================


class Board:
    """A Go position with chains, liberties, simple ko and capture counts (see the module docstring)."""

    __slots__ = (
        "x_size",
        "y_size",
        "arr_size",
        "colors",
        "chain_head",
        "next_in_chain",
        "chain_libs",
        "chain_locs",
        "ko_loc",
        "pos_hash",
        "num_black_captures",
        "num_white_captures",
        "adj_offsets",
        "adj4",
        "_geo",
    )

    NULL_LOC = NULL_LOC
    PASS_LOC = PASS_LOC
    MAX_LEN = MAX_LEN
    DEFAULT_LEN = DEFAULT_LEN

    def __init__(self, x_size: int = DEFAULT_LEN, y_size: int | None = None):
        if y_size is None:
            y_size = x_size
        if x_size < 0 or y_size < 0 or x_size > MAX_LEN or y_size > MAX_LEN:
            raise PositionError(f"invalid board size {x_size}x{y_size} (sides must be 0..{MAX_LEN})")
        geo = _geometry(x_size, y_size)
        n = geo.arr_size
        self._geo = geo
        self.x_size = x_size
        self.y_size = y_size
        self.arr_size = n
        self.colors = geo.empty_colors[:]
        self.chain_head = [0] * n
        self.next_in_chain = [0] * n
        self.chain_libs = [0] * n
        self.chain_locs = [0] * n
        self.ko_loc = NULL_LOC
        self.pos_hash = geo.base_hash
        self.num_black_captures = 0
        self.num_white_captures = 0
        self.adj_offsets = geo.adj_offsets
        self.adj4 = geo.adj4

    def copy(self) -> Board:
        """An independent copy (same chain representation, so searches on it behave identically)."""
        other = Board.__new__(Board)
        other._geo = self._geo
        other.x_size = self.x_size
        other.y_size = self.y_size
        other.arr_size = self.arr_size
        other.colors = self.colors[:]
        other.chain_head = self.chain_head[:]
        other.next_in_chain = self.next_in_chain[:]
        other.chain_libs = self.chain_libs[:]
        other.chain_locs = self.chain_locs[:]
        other.ko_loc = self.ko_loc
        other.pos_hash = self.pos_hash
        other.num_black_captures = self.num_black_captures
        other.num_white_captures = self.num_white_captures
        other.adj_offsets = self.adj_offsets
        other.adj4 = self.adj4
        return other

    __copy__ = copy

    def __deepcopy__(self, memo: dict) -> Board:
        return self.copy()

    # -----------------------------------------------------------------------------------------------------
    # Geometry

    @property
    def onboard_locs(self) -> tuple[int, ...]:
        """All on-board locs in KataGo's scan order (y then x, top row first)."""
        return self._geo.onboard

    def get_loc(self, x: int, y: int) -> int:
        """Loc of ``(x, y)`` on this board."""
        return (x + 1) + (y + 1) * (self.x_size + 1)

    def loc_of_string(self, text: str) -> int:
        """Parse a GTP vertex for this board's size."""
        return loc_of_string(text, self.x_size, self.y_size)

    def loc_to_string(self, loc: int) -> str:
        """GTP vertex of ``loc`` for this board's size."""
        return loc_to_string(loc, self.x_size, self.y_size)

    def sqrt_board_area(self) -> float:
        """``sqrt(x_size*y_size)`` (exactly ``x_size`` for square boards)."""
        return sqrt_board_area(self.x_size, self.y_size)

    def is_on_board(self, loc: int) -> bool:
        """True for a loc inside the board (not wall, not out of range)."""
        return 0 <= loc < self.arr_size and self.colors[loc] != C_WALL

    # -----------------------------------------------------------------------------------------------------
    # Simple queries

    def get_chain_size(self, loc: int) -> int:
        """Stones in the chain at ``loc`` (which must hold a stone)."""
        return self.chain_locs[self.chain_head[loc]]

    def get_num_liberties(self, loc: int) -> int:
        """Liberties of the chain at ``loc`` (which must hold a stone)."""
        return self.chain_libs[self.chain_head[loc]]

    def get_num_immediate_liberties(self, loc: int) -> int:
        """Empty orthogonal neighbours of ``loc``."""
        colors = self.colors
        w = self.x_size + 1
        return (
            (colors[loc - w] == C_EMPTY)
            + (colors[loc - 1] == C_EMPTY)
            + (colors[loc + 1] == C_EMPTY)
            + (colors[loc + w] == C_EMPTY)
        )

    def is_suicide(self, loc: int, pla: int) -> bool:
        """Would a stone of ``pla`` at empty ``loc`` have no liberties after captures?"""
        if loc == PASS_LOC:
            return False
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        opp = pla ^ 3
        adj4 = self.adj4
        for adj in adj4[loc]:
            c = colors[adj]
            if c == C_EMPTY:
                return False
            if c == pla:
                if libs[head[adj]] > 1:
                    return False
            elif c == opp:
                if libs[head[adj]] == 1:
                    return False
        return True

    def is_illegal_suicide(self, loc: int, pla: int, is_multi_stone_suicide_legal: bool) -> bool:
        """Would playing here be a suicide that the rules forbid?

        With ``is_multi_stone_suicide_legal`` only single-stone suicide is illegal.
        """
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        opp = pla ^ 3
        adj4 = self.adj4
        for adj in adj4[loc]:
            c = colors[adj]
            if c == C_EMPTY:
                return False
            if c == pla:
                if is_multi_stone_suicide_legal or libs[head[adj]] > 1:
                    return False
            elif c == opp:
                if libs[head[adj]] == 1:
                    return False
        return True

    def is_ko_banned(self, loc: int) -> bool:
        """Is ``loc`` the simple-ko ban point?"""
        return loc == self.ko_loc

    def is_legal(self, loc: int, pla: int, is_multi_stone_suicide_legal: bool) -> bool:
        """Legal under simple ko and the suicide rule (passing is always legal)."""
        if pla != P_BLACK and pla != P_WHITE:
            return False
        return loc == PASS_LOC or (
            0 <= loc < self.arr_size
            and self.colors[loc] == C_EMPTY
            and loc != self.ko_loc
            and not self.is_illegal_suicide(loc, pla, is_multi_stone_suicide_legal)
        )

    def is_legal_ignoring_ko(self, loc: int, pla: int, is_multi_stone_suicide_legal: bool) -> bool:
        """As :meth:`is_legal` but ignoring the simple-ko ban."""
        if pla != P_BLACK and pla != P_WHITE:
            return False
        return loc == PASS_LOC or (
            0 <= loc < self.arr_size
            and self.colors[loc] == C_EMPTY
            and not self.is_illegal_suicide(loc, pla, is_multi_stone_suicide_legal)
        )

    def is_simple_eye(self, loc: int, pla: int) -> bool:
        """Empty point surrounded by ``pla`` with few enough opponent diagonals."""
        colors = self.colors
        if colors[loc] != C_EMPTY:
            return False
        offs = self.adj_offsets
        against_wall = False
        for i in range(4):
            c = colors[loc + offs[i]]
            if c == C_WALL:
                against_wall = True
            elif c != pla:
                return False
        opp = pla ^ 3
        num_opp_corners = 0
        for i in range(4, 8):
            if colors[loc + offs[i]] == opp:
                num_opp_corners += 1
        return not (num_opp_corners >= 2 or (against_wall and num_opp_corners >= 1))

    def would_be_capture(self, loc: int, pla: int) -> bool:
        """Would ``pla`` at ``loc`` capture something?"""
        colors = self.colors
        if colors[loc] != C_EMPTY:
            return False
        head = self.chain_head
        libs = self.chain_libs
        opp = pla ^ 3
        adj4 = self.adj4
        for adj in adj4[loc]:
            if colors[adj] == opp and libs[head[adj]] == 1:
                return True
        return False

    def get_ko_capture_loc(self, loc: int, pla: int) -> int:
        """The single stone ``pla`` would capture at ``loc`` in a ko mouth, or ``NULL_LOC``."""
        colors = self.colors
        if colors[loc] != C_EMPTY:
            return NULL_LOC
        head = self.chain_head
        libs = self.chain_libs
        opp = pla ^ 3
        adj4 = self.adj4
        capturable = NULL_LOC
        for adj in adj4[loc]:
            c = colors[adj]
            if c != C_WALL and c != opp:
                return NULL_LOC
            if c == opp and libs[head[adj]] == 1:
                if capturable != NULL_LOC:
                    return NULL_LOC
                capturable = adj
        if capturable == NULL_LOC:
            return NULL_LOC
        if self.chain_locs[head[capturable]] != 1:
            return NULL_LOC
        return capturable

    def would_be_ko_capture(self, loc: int, pla: int) -> bool:
        """Would ``pla`` at ``loc`` capture exactly one stone inside a ko mouth?"""
        return self.get_ko_capture_loc(loc, pla) != NULL_LOC

    def is_adjacent_to_pla(self, loc: int, pla: int) -> bool:
        """Is any orthogonal neighbour of ``loc`` of colour ``pla``?"""
        colors = self.colors
        w = self.x_size + 1
        return (
            colors[loc - w] == pla
            or colors[loc - 1] == pla
            or colors[loc + 1] == pla
            or colors[loc + w] == pla
        )

    def is_adjacent_or_diagonal_to_pla(self, loc: int, pla: int) -> bool:
        """Is any of the 8 surrounding points of colour ``pla``?"""
        colors = self.colors
        return any(colors[loc + off] == pla for off in self.adj_offsets)

    def is_adjacent_to_chain(self, loc: int, chain: int) -> bool:
        """Is ``loc`` next to a stone of the chain containing ``chain``?"""
        colors = self.colors
        color = colors[chain]
        if color == C_EMPTY:
            return False
        head = self.chain_head
        target = head[chain]
        adj4 = self.adj4
        for adj in adj4[loc]:
            if colors[adj] == color and head[adj] == target:
                return True
        return False

    def is_adjacent_to_pla_head(self, pla: int, loc: int, pla_head: int) -> bool:
        """Is ``loc`` next to a stone of colour ``pla`` whose chain head is ``pla_head``?"""
        colors = self.colors
        head = self.chain_head
        adj4 = self.adj4
        for adj in adj4[loc]:
            if colors[adj] == pla and head[adj] == pla_head:
                return True
        return False

    def is_non_pass_alive_self_connection(self, loc: int, pla: int, pass_alive_area: Sequence[int]) -> bool:
        """Does ``pla`` at ``loc`` join two distinct chains, one of them not pass-alive?

        ``pass_alive_area`` is a :meth:`calculate_area` result (pass-alive stones and territory only).
        """
        colors = self.colors
        if colors[loc] != C_EMPTY or pass_alive_area[loc] == pla:
            return False
        head = self.chain_head
        adj4 = self.adj4
        adjs = adj4[loc]
        non_pass_alive_head = NULL_LOC
        for adj in adjs:
            if colors[adj] == pla and pass_alive_area[adj] == C_EMPTY:
                non_pass_alive_head = head[adj]
                break
        if non_pass_alive_head == NULL_LOC:
            return False
        for adj in adjs:
            if colors[adj] == pla and head[adj] != non_pass_alive_head:
                return True
        return False

    def is_empty(self) -> bool:
        """No stones on the board?"""
        colors = self.colors
        return all(colors[loc] == C_EMPTY for loc in self._geo.onboard)

    def num_stones_on_board(self) -> int:
        """Total number of stones."""
        colors = self.colors
        return sum(1 for loc in self._geo.onboard if colors[loc] == C_BLACK or colors[loc] == C_WHITE)

    def num_pla_stones_on_board(self, pla: int) -> int:
        """Number of stones of colour ``pla``."""
        colors = self.colors
        return sum(1 for loc in self._geo.onboard if colors[loc] == pla)

    def get_num_liberties_after_play(self, loc: int, pla: int, max_libs: int) -> int:
        """Liberties a stone of ``pla`` at ``loc`` would have (captures included), capped at ``max_libs``."""
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        nxt = self.next_in_chain
        opp = pla ^ 3
        adj4 = self.adj4
        adjs = adj4[loc]
        found: list[int] = []
        captured_heads: list[int] = []
        for adj in adjs:
            c = colors[adj]
            if c == C_EMPTY:
                found.append(adj)
                if len(found) >= max_libs:
                    return max_libs
            elif c == opp and libs[head[adj]] == 1:
                found.append(adj)
                if len(found) >= max_libs:
                    return max_libs
                h = head[adj]
                if h not in captured_heads:
                    captured_heads.append(h)

        connecting_heads: list[int] = []
        for adj in adjs:
            if colors[adj] != pla:
                continue
            h = head[adj]
            if h in connecting_heads:
                continue
            connecting_heads.append(h)
            cur = adj
            while True:
                for lib in adj4[cur]:
                    if lib == loc:
                        continue
                    c = colors[lib]
                    if c == C_EMPTY or (c == opp and head[lib] in captured_heads):
                        if lib not in found:
                            found.append(lib)
                            if len(found) >= max_libs:
                                return max_libs
                cur = nxt[cur]
                if cur == adj:
                    break
        return len(found)

    def get_bound_num_liberties_after_play(self, loc: int, pla: int) -> tuple[int, int]:
        """Cheap ``(lower, upper)`` bounds on the liberties of a stone of ``pla`` played at ``loc``."""
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        opp = pla ^ 3
        adj4 = self.adj4
        num_immediate = 0
        num_caps = 0
        potential_from_caps = 0
        num_connection = 0
        max_connection = 0
        for adj in adj4[loc]:
            c = colors[adj]
            if c == C_EMPTY:
                num_immediate += 1
            elif c == opp:
                h = head[adj]
                if libs[h] == 1:
                    num_caps += 1
                    potential_from_caps += self.chain_locs[h]
            elif c == pla:
                conn = libs[head[adj]] - 1
                num_connection += conn
                if conn > max_connection:
                    max_connection = conn
        lower = num_caps + (max_connection if max_connection > num_immediate else num_immediate)
        upper = num_immediate + potential_from_caps + num_connection
        return lower, upper

    def count_heuristic_connection_liberties_x2(self, loc: int, pla: int) -> int:
        """Sum over adjacent ``pla`` chains with >1 liberty of ``2*libs - 3`` (ladder move ordering)."""
        colors = self.colors
        head = self.chain_head
        libs_of = self.chain_libs
        adj4 = self.adj4
        total = 0
        for adj in adj4[loc]:
            if colors[adj] == pla:
                libs = libs_of[head[adj]]
                if libs > 1:
                    total += libs * 2 - 3
        return total

    # -----------------------------------------------------------------------------------------------------
    # Hashes

    def get_sit_hash_with_simple_ko(self, pla: int) -> int:
        """``pos_hash`` combined with the simple-ko point and the player to move."""
        h = self.pos_hash
        if self.ko_loc != NULL_LOC:
            h ^= ZOBRIST_KO_LOC_HASH[self.ko_loc]
        return h ^ ZOBRIST_PLAYER_HASH[pla]

    def get_pos_hash_after_move(self, loc: int, pla: int) -> int:
        """``pos_hash`` after ``pla`` plays at empty ``loc`` (captures and suicide resolved)."""
        if loc == PASS_LOC:
            return self.pos_hash
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        nxt = self.next_in_chain
        zb_pla = _ZB[pla]
        opp = pla ^ 3
        zb_opp = _ZB[opp]
        adj4 = self.adj4
        adjs = adj4[loc]
        h = self.pos_hash ^ zb_pla[loc]
        would_be_suicide = True
        captured_heads: list[int] = []
        for adj in adjs:
            c = colors[adj]
            if c == C_EMPTY:
                would_be_suicide = False
            elif c == pla and libs[head[adj]] > 1:
                would_be_suicide = False
            elif c == opp and libs[head[adj]] == 1:
                ch = head[adj]
                if ch not in captured_heads:
                    captured_heads.append(ch)
                    would_be_suicide = False
                    cur = adj
                    while True:
                        h ^= zb_opp[cur]
                        cur = nxt[cur]
                        if cur == adj:
                            break
        if would_be_suicide:
            for adj in adjs:
                if colors[adj] == pla and libs[head[adj]] == 1:
                    ch = head[adj]
                    if ch not in captured_heads:
                        captured_heads.append(ch)
                        cur = adj
                        while True:
                            h ^= zb_pla[cur]
                            cur = nxt[cur]
                            if cur == adj:
                                break
            h ^= zb_pla[loc]
        return h

    # -----------------------------------------------------------------------------------------------------
    # Ko

    def clear_simple_ko_loc(self) -> None:
        """Lift the simple-ko ban."""
        self.ko_loc = NULL_LOC

    def set_simple_ko_loc(self, loc: int) -> None:
        """Set the simple-ko ban point directly."""
        self.ko_loc = loc

    # -----------------------------------------------------------------------------------------------------
    # Playing moves

    def play_move(self, loc: int, pla: int, is_multi_stone_suicide_legal: bool) -> bool:
        """Play if legal; returns whether the move was played."""
        if self.is_legal(loc, pla, is_multi_stone_suicide_legal):
            self.play_move_assume_legal(loc, pla)
            return True
        return False

    def play_move_assume_legal(self, loc: int, pla: int) -> None:
        """Play a move already known to be legal (captures, suicide and the ko point are resolved)."""
        if loc == PASS_LOC:
            self.ko_loc = NULL_LOC
            return
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        locs = self.chain_locs
        adjs = self.adj4[loc]
        a0, a1, a2, a3 = adjs

        colors[loc] = pla
        self.pos_hash ^= _ZB[pla][loc]
        locs[loc] = 1
        libs[loc] = (
            (colors[a0] == C_EMPTY)
            + (colors[a1] == C_EMPTY)
            + (colors[a2] == C_EMPTY)
            + (colors[a3] == C_EMPTY)
        )
        head[loc] = loc
        self.next_in_chain[loc] = loc

        opp = pla ^ 3
        num_captured = 0
        possible_ko_loc = NULL_LOC
        opp_heads_seen: list[int] = []
        for adj in adjs:
            c = colors[adj]
            if c == pla:
                adj_head = head[adj]
                if adj_head == head[loc]:
                    continue
                libs[adj_head] -= 1
                self._merge_chains(adj, loc)
            elif c == opp:
                opp_head = head[adj]
                if opp_head in opp_heads_seen:
                    continue
                libs[opp_head] -= 1
                opp_heads_seen.append(opp_head)
                if libs[opp_head] == 0:
                    num_captured += self._remove_chain(adj)
                    possible_ko_loc = adj

        my_head = head[loc]
        if num_captured == 1 and locs[my_head] == 1 and libs[my_head] == 1:
            self.ko_loc = possible_ko_loc
        else:
            self.ko_loc = NULL_LOC

        if num_captured:
            if pla == P_BLACK:
                self.num_white_captures += num_captured
            else:
                self.num_black_captures += num_captured

        if libs[my_head] == 0:
            num_suicided = locs[my_head]
            self._remove_chain(loc)
            if pla == P_BLACK:
                self.num_black_captures += num_suicided
            else:
                self.num_white_captures += num_suicided

    def play_move_recorded(self, loc: int, pla: int) -> MoveRecord:
        """Play a legal move and return the record needed to :meth:`undo` it."""
        cap_dirs = 0
        if loc != PASS_LOC:
            colors = self.colors
            head = self.chain_head
            libs = self.chain_libs
            opp = pla ^ 3
            a0, a1, a2, a3 = self.adj4[loc]
            if colors[a0] == opp and libs[head[a0]] == 1:
                cap_dirs |= 1
            if colors[a1] == opp and libs[head[a1]] == 1:
                cap_dirs |= 2
            if colors[a2] == opp and libs[head[a2]] == 1:
                cap_dirs |= 4
            if colors[a3] == opp and libs[head[a3]] == 1:
                cap_dirs |= 8
            if cap_dirs == 0 and self.is_suicide(loc, pla):
                cap_dirs = 0x10
        record = (pla, loc, self.ko_loc, cap_dirs)
        self.play_move_assume_legal(loc, pla)
        return record

    def undo(self, record: MoveRecord) -> None:
        """Undo the move of ``record``; moves must be undone in reverse order.

        As in KataGo, the chain representation afterwards may differ from before the move (heads and list
        order), although the position, hash, captures and ko point are restored.
        """
        pla, loc, ko_loc, cap_dirs = record
        self.ko_loc = ko_loc
        if loc == PASS_LOC:
            return
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        locs = self.chain_locs
        nxt = self.next_in_chain
        opp = pla ^ 3
        adj4 = self.adj4
        adjs = adj4[loc]

        if cap_dirs & 0xF:
            for i in range(4):
                if cap_dirs & (1 << i):
                    adj = adjs[i]
                    if colors[adj] == C_EMPTY:
                        self._add_chain(adj, opp)
                        num_uncaptured = locs[head[adj]]
                        if pla == P_BLACK:
                            self.num_white_captures -= num_uncaptured
                        else:
                            self.num_black_captures -= num_uncaptured
        if cap_dirs == 0x10:
            self._add_chain(loc, pla)
            num_uncaptured = locs[head[loc]]
            if pla == P_BLACK:
                self.num_black_captures -= num_uncaptured
            else:
                self.num_white_captures -= num_uncaptured

        self.pos_hash ^= _ZB[colors[loc]][loc]
        colors[loc] = C_EMPTY
        # Give the liberty back to each distinct adjacent opponent chain.
        a0, a1, a2, a3 = adjs
        h0 = head[a0] if colors[a0] == opp else -1
        h1 = head[a1] if colors[a1] == opp else -1
        h2 = head[a2] if colors[a2] == opp else -1
        h3 = head[a3] if colors[a3] == opp else -1
        if h0 >= 0:
            libs[h0] += 1
        if h1 >= 0 and h1 != h0:
            libs[h1] += 1
        if h2 >= 0 and h2 != h0 and h2 != h1:
            libs[h2] += 1
        if h3 >= 0 and h3 != h0 and h3 != h1 and h3 != h2:
            libs[h3] += 1

        if locs[head[loc]] <= 1:
            return
        num_neighbors = (
            (colors[adjs[0]] == pla)
            + (colors[adjs[1]] == pla)
            + (colors[adjs[2]] == pla)
            + (colors[adjs[3]] == pla)
        )
        if num_neighbors <= 1:
            # Removing a stone with a single friendly neighbour cannot split its chain: unlink it.
            h = head[loc]
            if h == loc:
                new_head = nxt[loc]
                cur = loc
                while True:
                    head[cur] = new_head
                    cur = nxt[cur]
                    if cur == loc:
                        break
                libs[new_head] = libs[h]
                locs[new_head] = locs[h]
                h = new_head
            cur = h
            while nxt[cur] != loc:
                cur = nxt[cur]
            nxt[cur] = nxt[loc]
            delta = 1
            for adj in adjs:
                if colors[adj] == C_EMPTY:
                    b0, b1, b2, b3 = adj4[adj]
                    if not (
                        (colors[b0] == pla and head[b0] == h)
                        or (colors[b1] == pla and head[b1] == h)
                        or (colors[b2] == pla and head[b2] == h)
                        or (colors[b3] == pla and head[b3] == h)
                    ):
                        delta -= 1
            libs[h] += delta
            locs[h] -= 1
        else:
            # The chain may have split: rebuild every chain touching the removed stone.
            cur = loc
            while True:
                head[cur] = NULL_LOC
                cur = nxt[cur]
                if cur == loc:
                    break
            for adj in adjs:
                if colors[adj] == pla and head[adj] == NULL_LOC:
                    self._rebuild_chain(adj, pla)

    # -----------------------------------------------------------------------------------------------------
    # Chain maintenance (private, verbatim in behaviour)

    def _change_surrounding_liberties(self, loc: int, color: int, delta: int) -> None:
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        a0, a1, a2, a3 = self.adj4[loc]
        h0 = head[a0] if colors[a0] == color else -1
        h1 = head[a1] if colors[a1] == color else -1
        h2 = head[a2] if colors[a2] == color else -1
        h3 = head[a3] if colors[a3] == color else -1
        if h0 >= 0:
            libs[h0] += delta
        if h1 >= 0 and h1 != h0:
            libs[h1] += delta
        if h2 >= 0 and h2 != h0 and h2 != h1:
            libs[h2] += delta
        if h3 >= 0 and h3 != h0 and h3 != h1 and h3 != h2:
            libs[h3] += delta

    def _merge_chains(self, loc1: int, loc2: int) -> None:
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        locs = self.chain_locs
        nxt = self.next_in_chain
        adj4 = self.adj4
        head1 = head[loc1]
        head2 = head[loc2]
        if locs[head1] < locs[head2]:
            head1, head2 = head2, head1
        locs[head1] += locs[head2]
        color = colors[head1]
        new_libs = 0
        cur = head2
        while True:
            for adj in adj4[cur]:
                if colors[adj] != C_EMPTY:
                    continue
                # A liberty is new unless a stone already under head1 touches it.
                b0, b1, b2, b3 = adj4[adj]
                if not (
                    (colors[b0] == color and head[b0] == head1)
                    or (colors[b1] == color and head[b1] == head1)
                    or (colors[b2] == color and head[b2] == head1)
                    or (colors[b3] == color and head[b3] == head1)
                ):
                    new_libs += 1
            head[cur] = head1
            if nxt[cur] != head2:
                cur = nxt[cur]
            else:
                break
        libs[head1] += new_libs
        nxt[cur] = nxt[head1]
        nxt[head1] = head2

    def _remove_chain(self, loc: int) -> int:
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        nxt = self.next_in_chain
        adj4 = self.adj4
        color = colors[loc]
        opp = color ^ 3
        zb = _ZB[color]
        pos_hash = self.pos_hash
        num_removed = 0
        cur = loc
        while True:
            pos_hash ^= zb[cur]
            colors[cur] = C_EMPTY
            num_removed += 1
            # Give a liberty back to each distinct adjacent opponent chain.
            a0, a1, a2, a3 = adj4[cur]
            h0 = head[a0] if colors[a0] == opp else -1
            h1 = head[a1] if colors[a1] == opp else -1
            h2 = head[a2] if colors[a2] == opp else -1
            h3 = head[a3] if colors[a3] == opp else -1
            if h0 >= 0:
                libs[h0] += 1
            if h1 >= 0 and h1 != h0:
                libs[h1] += 1
            if h2 >= 0 and h2 != h0 and h2 != h1:
                libs[h2] += 1
            if h3 >= 0 and h3 != h0 and h3 != h1 and h3 != h2:
                libs[h3] += 1
            cur = nxt[cur]
            if cur == loc:
                break
        self.pos_hash = pos_hash
        return num_removed

    def _remove_single_stone(self, loc: int) -> None:
        pla = self.colors[loc]
        nxt = self.next_in_chain
        chain = []
        cur = loc
        while True:
            chain.append(cur)
            cur = nxt[cur]
            if cur == loc:
                break
        self._remove_chain(loc)
        for stone in chain:
            if stone != loc:
                self.play_move_assume_legal(stone, pla)

    def _add_chain(self, loc: int, pla: int) -> None:
        # Flood-fill ``pla`` stones into the empty region containing loc as one chain headed by loc (used to
        # put captured stones back). Liberties are not counted (the caller's liberty updates restore them).
        # KataGo does this with a recursive helper that builds the stone list front -> ... -> loc; this is the
        # same depth-first traversal with an explicit stack, so the list order is identical.
        colors = self.colors
        head = self.chain_head
        nxt = self.next_in_chain
        adj4 = self.adj4
        zb = _ZB[pla]
        self.chain_libs[loc] = 0
        self.chain_locs[loc] = 0
        count = 0

        def place(stone: int, tail_target: int) -> None:
            nonlocal count
            colors[stone] = pla
            self.pos_hash ^= zb[stone]
            head[stone] = loc
            count += 1
            nxt[stone] = tail_target
            self._change_surrounding_liberties(stone, pla ^ 3, -1)

        place(loc, loc)
        # Frames: [stone, next neighbour index, list front built so far below this stone].
        stack = [[loc, 0, loc]]
        front = loc
        while stack:
            frame = stack[-1]
            stone = frame[0]
            i = frame[1]
            adjs = adj4[stone]
            while i < 4 and colors[adjs[i]] != C_EMPTY:
                i += 1
            if i < 4:
                frame[1] = i + 1
                child = adjs[i]
                place(child, frame[2])
                stack.append([child, 0, child])
            else:
                stack.pop()
                front = frame[2]
                if stack:
                    stack[-1][2] = front
        self.chain_locs[loc] = count
        nxt[loc] = front

    def _rebuild_chain(self, loc: int, pla: int) -> None:
        # Re-link an existing chain (whose stones' heads point to an invalid loc) under head loc, counting its
        # liberties. Same depth-first order as KataGo's recursive rebuildChainHelper, with an explicit stack:
        # a stone's new liberties are counted before it joins, then its neighbours are visited in adj4 order.
        colors = self.colors
        head = self.chain_head
        nxt = self.next_in_chain
        adj4 = self.adj4
        libs_added = 0
        count = 0
        stack: list[list[int]] = []
        stone = loc
        tail_target = loc
        while True:
            # Visit ``stone``: count liberties no stone already under ``loc`` touches, then link it in.
            for adj in adj4[stone]:
                if colors[adj] == C_EMPTY:
                    b0, b1, b2, b3 = adj4[adj]
                    if not (
                        (colors[b0] == pla and head[b0] == loc)
                        or (colors[b1] == pla and head[b1] == loc)
                        or (colors[b2] == pla and head[b2] == loc)
                        or (colors[b3] == pla and head[b3] == loc)
                    ):
                        libs_added += 1
            head[stone] = loc
            count += 1
            nxt[stone] = tail_target
            # Frame: [stone, next neighbour index, list front built so far below this stone].
            stack.append([stone, 0, stone])
            # Find the next stone to visit, unwinding finished frames.
            stone = NULL_LOC
            while stack:
                frame = stack[-1]
                adjs = adj4[frame[0]]
                i = frame[1]
                while i < 4:
                    a = adjs[i]
                    i += 1
                    if colors[a] == pla and head[a] != loc:
                        stone = a
                        break
                frame[1] = i
                if stone != NULL_LOC:
                    tail_target = frame[2]
                    break
                stack.pop()
                if stack:
                    stack[-1][2] = frame[2]
                else:
                    nxt[loc] = frame[2]
            if stone == NULL_LOC:
                break
        self.chain_libs[loc] = libs_added
        self.chain_locs[loc] = count

    # -----------------------------------------------------------------------------------------------------
    # Setting stones directly

    def set_stone(self, loc: int, color: int) -> bool:
        """Put ``color`` (or empty) at ``loc``, resolving captures/suicide; clears the ko point.

        Returns False for an off-board loc or an invalid colour.
        """
        if loc < 0 or loc >= self.arr_size or self.colors[loc] == C_WALL:
            return False
        if color != C_BLACK and color != C_WHITE and color != C_EMPTY:
            return False
        current = self.colors[loc]
        if current == color:
            pass
        elif current == C_EMPTY:
            if not self.is_illegal_suicide(loc, color, True):
                self.play_move_assume_legal(loc, color)
        elif color == C_EMPTY:
            self._remove_single_stone(loc)
        else:
            self._remove_single_stone(loc)
            if not self.is_suicide(loc, color):
                self.play_move_assume_legal(loc, color)
        self.ko_loc = NULL_LOC
        return True

    def set_stone_fail_if_no_libs(self, loc: int, color: int) -> bool:
        """Set a stone only if that captures nothing and leaves no chain without liberties."""
        if loc < 0 or loc >= self.arr_size or self.colors[loc] == C_WALL:
            return False
        if color != C_BLACK and color != C_WHITE and color != C_EMPTY:
            return False
        old_ko_loc = self.ko_loc
        current = self.colors[loc]
        if current == color:
            pass
        elif current == C_EMPTY:
            if self.is_suicide(loc, color) or self.would_be_capture(loc, color):
                return False
            self.play_move_assume_legal(loc, color)
        elif color == C_EMPTY:
            self._remove_single_stone(loc)
        else:
            self._remove_single_stone(loc)
            if self.is_suicide(loc, color) or self.would_be_capture(loc, color):
                self.play_move_assume_legal(loc, color ^ 3)
                self.ko_loc = old_ko_loc
                return False
            self.play_move_assume_legal(loc, color)
        self.ko_loc = NULL_LOC
        return True

    def set_stones_fail_if_no_libs(self, placements: Sequence[tuple[int, int]]) -> bool:
        """Set several ``(loc, color)`` placements; False if a loc repeats or a chain would lack liberties."""
        seen = set()
        for loc, _color in placements:
            if loc in seen:
                return False
            seen.add(loc)
        for loc, _color in placements:
            if not self.set_stone_fail_if_no_libs(loc, C_EMPTY):
                return False
        for loc, color in placements:
            if not self.set_stone_fail_if_no_libs(loc, color):
                return False
        return True

    def regen_chains_from_colors(self) -> None:
        """Rebuild ``pos_hash`` and all chain bookkeeping from ``colors`` alone."""
        colors = self.colors
        head = self.chain_head
        pos_hash = self._geo.base_hash
        onboard = self._geo.onboard
        for loc in onboard:
            c = colors[loc]
            if c == C_BLACK or c == C_WHITE:
                pos_hash ^= _ZB[c][loc]
                head[loc] = NULL_LOC
        self.pos_hash = pos_hash
        for loc in onboard:
            c = colors[loc]
            if (c == C_BLACK or c == C_WHITE) and head[loc] == NULL_LOC:
                self._rebuild_chain(loc, c)

    def set_stones_tolerant(self, placements: Iterable[tuple[int, int]]) -> int:
        """Overlay ``(loc, color)`` placements, then remove every chain left without liberties at once.

        Off-board locs and invalid colours are ignored; the ko point is cleared. Returns stones removed.
        """
        colors = self.colors
        n = self.arr_size
        for loc, color in placements:
            if loc < 0 or loc >= n or colors[loc] == C_WALL:
                continue
            if color != C_EMPTY and color != C_BLACK and color != C_WHITE:
                continue
            colors[loc] = color
        self.regen_chains_from_colors()
        head = self.chain_head
        libs = self.chain_libs
        num_removed = 0
        for loc in self._geo.onboard:
            c = colors[loc]
            if (c == C_BLACK or c == C_WHITE) and libs[head[loc]] == 0:
                colors[loc] = C_EMPTY
                num_removed += 1
        if num_removed > 0:
            self.regen_chains_from_colors()
        self.ko_loc = NULL_LOC
        return num_removed

    # -----------------------------------------------------------------------------------------------------
    # Repetition bound (used by graph hashing)

    def _count_empty_helper(
        self, counted: list[bool], initial: int, count: int, bound: int
    ) -> tuple[bool, int]:
        if counted[initial]:
            return False, count
        count += 1
        counted[initial] = True
        if count > bound:
            return True, count
        colors = self.colors
        adj4 = self.adj4
        to_expand = [initial]
        i = 0
        while i < len(to_expand):
            loc = to_expand[i]
            i += 1
            for adj in adj4[loc]:
                if colors[adj] == C_EMPTY and not counted[adj]:
                    count += 1
                    counted[adj] = True
                    if count > bound:
                        return True, count
                    to_expand.append(adj)
        return False, count

    def simple_repetition_bound_gt(self, loc: int, bound: int) -> bool:
        """For a move just played at ``loc``: is its chain size plus the sizes of the empty regions it
        touches greater than ``bound``? False for passes and ``NULL_LOC``."""
        if loc == NULL_LOC or loc == PASS_LOC:
            return False
        colors = self.colors
        count = 0
        if colors[loc] != C_EMPTY:
            h = self.chain_head[loc]
            count += self.chain_locs[h]
            if count + self.chain_libs[h] > bound:
                return True
        counted = [False] * self.arr_size
        if colors[loc] == C_EMPTY:
            return self._count_empty_helper(counted, loc, count, bound)[0]
        adj4 = self.adj4
        nxt = self.next_in_chain
        cur = loc
        while True:
            for lib in adj4[cur]:
                if colors[lib] == C_EMPTY:
                    exceeded, count = self._count_empty_helper(counted, lib, count, bound)
                    if exceeded:
                        return True
            cur = nxt[cur]
            if cur == loc:
                break
        return False

    # -----------------------------------------------------------------------------------------------------
    # Ladders

    def _first_liberties(self, loc: int, count: int) -> list[int]:
        # The chain's distinct liberties in KataGo's enumeration order (walk the circular stone list from loc,
        # neighbours in adj4 order, keep first occurrences). Stops once ``count`` have been found: with
        # count = the chain's liberty count the result is the full list KataGo's findLiberties produces.
        colors = self.colors
        nxt = self.next_in_chain
        adj4 = self.adj4
        found: list[int] = []
        num_found = 0
        cur = loc
        while True:
            for lib in adj4[cur]:
                if colors[lib] == C_EMPTY and lib not in found:
                    found.append(lib)
                    num_found += 1
                    if num_found == count:
                        return found
            cur = nxt[cur]
            if cur == loc:
                return found

    def _defender_moves(self, loc: int) -> list[int]:
        # KataGo's defender move list for the 1-liberty chain at loc: findLibertyGainingCaptures (the lone
        # liberty of every adjacent opponent chain in atari, in walk order, deduplicated) followed by
        # findLiberties (the chain's single liberty, unless already listed). One walk collects both.
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        nxt = self.next_in_chain
        adj4 = self.adj4
        opp = colors[loc] ^ 3
        moves: list[int] = []
        checked: list[int] = []
        own_lib = NULL_LOC
        cur = loc
        while True:
            for adj in adj4[cur]:
                c = colors[adj]
                if c == opp:
                    h = head[adj]
                    if libs[h] == 1 and h not in checked:
                        capture = self._first_liberties(adj, 1)[0]
                        if capture not in moves:
                            moves.append(capture)
                        checked.append(h)
                elif c == C_EMPTY and own_lib == NULL_LOC:
                    own_lib = adj
            cur = nxt[cur]
            if cur == loc:
                break
        if own_lib not in moves:
            moves.append(own_lib)
        return moves

    def _has_liberty_gaining_captures(self, loc: int) -> bool:
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        nxt = self.next_in_chain
        opp = colors[loc] ^ 3
        adj4 = self.adj4
        cur = loc
        while True:
            for adj in adj4[cur]:
                if colors[adj] == opp and libs[head[adj]] == 1:
                    return True
            cur = nxt[cur]
            if cur == loc:
                break
        return False

    def find_liberties(self, loc: int) -> list[int]:
        """Liberties of the chain at ``loc`` in KataGo's enumeration order (``findLiberties``)."""
        return self._first_liberties(loc, self.chain_libs[self.chain_head[loc]])

    def search_is_ladder_captured_attacker_first_2libs(self, loc: int) -> tuple[bool, list[int]]:
        """For a 2-liberty chain at ``loc``: can the opponent start a working ladder on it?

        Returns ``(captured, working_moves)`` where ``working_moves`` lists the liberties (in KataGo's order)
        whose filling leads to a ladder capture (empty when not captured). The board is restored afterwards,
        though, as in KataGo, its chain lists may be reordered.
        """
        if loc < 0 or loc >= self.arr_size:
            return False, []
        colors = self.colors
        pla = colors[loc]
        if pla != C_BLACK and pla != C_WHITE:
            return False, []
        if self.chain_libs[self.chain_head[loc]] != 2:
            return False, []
        opp = pla ^ 3
        libs = self.find_liberties(loc)
        move0 = libs[0]
        move1 = libs[1]
        move0_works = False
        move1_works = False
        # Suicide is never useful in a ladder, so it is treated as illegal.
        if self.is_legal(move0, opp, False):
            record = self.play_move_recorded(move0, opp)
            move0_works = self.search_is_ladder_captured(loc, True)
            self.undo(record)
        if self.is_legal(move1, opp, False):
            record = self.play_move_recorded(move1, opp)
            move1_works = self.search_is_ladder_captured(loc, True)
            self.undo(record)
        if move0_works or move1_works:
            working = []
            if move0_works:
                working.append(move0)
            if move1_works:
                working.append(move1)
            return True, working
        return False, []

    def search_is_ladder_captured(self, loc: int, defender_first: bool) -> bool:
        """Is the chain at ``loc`` in an inescapable atari (ladder), with the defender or attacker to move?

        KataGo's depth-first search: the defender tries liberty-gaining captures then its liberty, the attacker
        tries both liberties in heuristic order; positions where the defender left a ko, double-ko deaths,
        a stack limit (counted as captured) and a budget of :data:`MAX_LADDER_SEARCH_NODE_BUDGET` moves
        (counted as not captured) are handled exactly as KataGo. The search plays on this board and undoes
        its moves, so chain lists may be reordered afterwards. As in KataGo, a search that exhausts the budget
        does not restore ``ko_loc``: with ``defender_first`` it is left cleared.
        """
        if loc < 0 or loc >= self.arr_size:
            return False
        colors = self.colors
        pla = colors[loc]
        if pla != C_BLACK and pla != C_WHITE:
            return False
        head = self.chain_head
        chain_libs = self.chain_libs
        root_libs = chain_libs[head[loc]]
        if root_libs > 2 or (defender_first and root_libs > 1):
            return False

        opp = pla ^ 3
        root_moves: list[int] | None = None
        if defender_first:
            # The root node's shortcuts, before any set-up: they read neither the ko point nor the stack, so
            # they decide exactly as the loop's first step would (which then reuses this move list).
            root_moves = self._defender_moves(loc)
            lower, upper = self.get_bound_num_liberties_after_play(root_moves[-1], pla)
            if lower >= 3:
                return False
            if len(root_moves) == 1 and upper <= 1:
                return True
        w = self.x_size + 1
        ko_loc_saved = self.ko_loc
        if defender_first:
            self.ko_loc = NULL_LOC

        stack_size = self.x_size * self.y_size * 3 // 2 + 1
        move_lists: list[list[int]] = [[]] * (stack_size + 1)
        move_cur = [0] * (stack_size + 1)
        records: list[MoveRecord] = [(0, 0, 0, 0)] * (stack_size + 1)
        defender_parity = 0 if defender_first else 1
        play = self.play_move_recorded
        undo = self.undo

        stack_idx = 0
        node_count = 0
        move_cur[0] = -1
        ret = False
        from_deeper = False

        while True:
            if stack_idx <= -1:
                self.ko_loc = ko_loc_saved
                return ret
            if stack_idx >= stack_size - 1:
                ret = True
                from_deeper = True
                stack_idx -= 1
                continue
            if node_count >= MAX_LADDER_SEARCH_NODE_BUDGET:
                stack_idx -= 1
                while stack_idx >= 0:
                    undo(records[stack_idx])
                    stack_idx -= 1
                return False

            is_defender = (stack_idx & 1) == defender_parity

            if move_cur[stack_idx] == -1:
                libs = chain_libs[head[loc]]
                if is_defender:
                    if libs >= 2 or self.ko_loc != NULL_LOC:
                        ret = False
                        from_deeper = True
                        stack_idx -= 1
                        continue
                    if root_moves is not None:  # the root, whose shortcuts were already tried
                        moves = root_moves
                        root_moves = None
                    else:
                        moves = self._defender_moves(loc)
                        lower, upper = self.get_bound_num_liberties_after_play(moves[-1], pla)
                        if lower >= 3:
                            ret = False
                            from_deeper = True
                            stack_idx -= 1
                            continue
                        if len(moves) == 1 and upper <= 1:
                            ret = True
                            from_deeper = True
                            stack_idx -= 1
                            continue
                else:
                    if libs <= 1:
                        ret = True
                        from_deeper = True
                        stack_idx -= 1
                        continue
                    if libs >= 3:
                        ret = False
                        from_deeper = True
                        stack_idx -= 1
                        continue
                    moves = self._first_liberties(loc, 2)
                    m0 = moves[0]
                    m1 = moves[1]
                    libs0 = (
                        (colors[m0 - w] == C_EMPTY)
                        + (colors[m0 - 1] == C_EMPTY)
                        + (colors[m0 + 1] == C_EMPTY)
                        + (colors[m0 + w] == C_EMPTY)
                    )
                    libs1 = (
                        (colors[m1 - w] == C_EMPTY)
                        + (colors[m1 - 1] == C_EMPTY)
                        + (colors[m1 + 1] == C_EMPTY)
                        + (colors[m1 + w] == C_EMPTY)
                    )
                    # Double-ko death: both liberties are ko mouths the defender cannot profit from.
                    if (
                        libs0 == 0
                        and libs1 == 0
                        and self.would_be_ko_capture(m0, opp)
                        and self.would_be_ko_capture(m1, opp)
                        and self.get_num_liberties_after_play(m0, pla, 3) <= 2
                        and self.get_num_liberties_after_play(m1, pla, 3) <= 2
                        and not self._has_liberty_gaining_captures(loc)
                    ):
                        ret = True
                        from_deeper = True
                        stack_idx -= 1
                        continue
                    if not (m0 == m1 - w or m0 == m1 - 1 or m0 == m1 + 1 or m0 == m1 + w):
                        if libs0 >= 3 and libs1 >= 3:
                            ret = False
                            from_deeper = True
                            stack_idx -= 1
                            continue
                        elif libs0 >= 3:
                            del moves[1:]
                        elif libs1 >= 3:
                            moves[0] = m1
                            del moves[1:]
                    if len(moves) > 1:
                        score0 = libs0 * 2 + self.count_heuristic_connection_liberties_x2(m0, pla)
                        score1 = libs1 * 2 + self.count_heuristic_connection_liberties_x2(m1, pla)
                        if score1 > score0:
                            moves[0] = m1
                            moves[1] = m0
                move_lists[stack_idx] = moves
                move_cur[stack_idx] = 0
            else:
                if from_deeper:
                    undo(records[stack_idx])
                if is_defender != ret:
                    # Defender found an escape, or attacker found a capture: this node is decided.
                    from_deeper = True
                    stack_idx -= 1
                    continue
                move_cur[stack_idx] += 1

            moves = move_lists[stack_idx]
            cur_idx = move_cur[stack_idx]
            if cur_idx >= len(moves):
                ret = is_defender
                from_deeper = True
                stack_idx -= 1
                continue

            move = moves[cur_idx]
            p = pla if is_defender else opp
            # Candidate moves are always empty on-board points; check ko and (single/multi stone) suicide.
            if move == self.ko_loc or self.is_illegal_suicide(move, p, False):
                ret = is_defender
                from_deeper = False
                continue

            records[stack_idx] = play(move, p)
            node_count += 1
            stack_idx += 1
            move_cur[stack_idx] = -1

    # -----------------------------------------------------------------------------------------------------
    # Area (Benson pass-alive + territories)

    def calculate_area(
        self,
        result: list[int] | None,
        non_pass_alive_stones: bool,
        safe_big_territories: bool,
        unsafe_big_territories: bool,
        is_multi_stone_suicide_legal: bool,
    ) -> list[int]:
        """Fill ``result`` (by loc) with each point's owner, as KataGo's ``calculateArea``.

        Pass-alive stones and pass-alive territory (Benson) are always marked. ``safe_big_territories`` adds
        empty regions bordered only by a player's pass-alive stones; ``unsafe_big_territories`` adds, where
        still unmarked, empty regions bordered only by that player's stones; ``non_pass_alive_stones`` marks
        every remaining stone with its own colour. Everything else is ``C_EMPTY``.
        """
        n = self.arr_size
        if result is None:
            result = [C_EMPTY] * n
        else:
            result[:] = [C_EMPTY] * len(result)
        self._calculate_area_for_pla(
            P_BLACK, safe_big_territories, unsafe_big_territories, is_multi_stone_suicide_legal, result
        )
        self._calculate_area_for_pla(
            P_WHITE, safe_big_territories, unsafe_big_territories, is_multi_stone_suicide_legal, result
        )
        if non_pass_alive_stones:
            colors = self.colors
            for loc in self._geo.onboard:
                if result[loc] == C_EMPTY:
                    result[loc] = colors[loc]
        return result

    def calculate_independent_life_area(
        self,
        result: list[int] | None,
        keep_territories: bool,
        keep_stones: bool,
        is_multi_stone_suicide_legal: bool,
    ) -> tuple[list[int], int]:
        """Area as :meth:`calculate_area` with everything on, minus "seki" regions (KataGo's
        ``calculateIndependentLifeArea``).

        A region is seki-like when it touches dame or holds an owner's stone in atari. ``keep_territories``
        puts back their territory points, ``keep_stones`` their stones. Returns ``(result,
        white_minus_black_independent_life_region_count)``; double the count for a group tax.
        """
        n = self.arr_size
        if result is None:
            result = [C_EMPTY] * n
        else:
            result[:] = [C_EMPTY] * len(result)
        basic = [C_EMPTY] * n
        self._calculate_area_for_pla(P_BLACK, True, True, is_multi_stone_suicide_legal, basic)
        self._calculate_area_for_pla(P_WHITE, True, True, is_multi_stone_suicide_legal, basic)
        colors = self.colors
        onboard = self._geo.onboard
        for loc in onboard:
            if basic[loc] == C_EMPTY:
                basic[loc] = colors[loc]

        count = self._independent_life_area_helper(basic, result)

        if keep_territories:
            for loc in onboard:
                b = basic[loc]
                if b != C_EMPTY and b != colors[loc]:
                    result[loc] = b
        if keep_stones:
            for loc in onboard:
                b = basic[loc]
                if b != C_EMPTY and b == colors[loc]:
                    result[loc] = b
        return result, count

    def _independent_life_area_helper(self, basic: list[int], result: list[int]) -> int:
        colors = self.colors
        head = self.chain_head
        libs = self.chain_libs
        w = self.x_size + 1
        adj4 = self.adj4
        onboard = self._geo.onboard
        is_seki = [False] * self.arr_size
        count = 0

        for loc in onboard:
            owner = basic[loc]
            if owner == C_EMPTY or is_seki[loc]:
                continue
            touches_dame = (
                (colors[loc - w] == C_EMPTY and basic[loc - w] == C_EMPTY)
                or (colors[loc - 1] == C_EMPTY and basic[loc - 1] == C_EMPTY)
                or (colors[loc + 1] == C_EMPTY and basic[loc + 1] == C_EMPTY)
                or (colors[loc + w] == C_EMPTY and basic[loc + w] == C_EMPTY)
            )
            if (colors[loc] == owner and libs[head[loc]] == 1) or touches_dame:
                is_seki[loc] = True
                queue = [loc]
                i = 0
                while i < len(queue):
                    cur = queue[i]
                    i += 1
                    for adj in adj4[cur]:
                        if basic[adj] == owner and not is_seki[adj]:
                            is_seki[adj] = True
                            queue.append(adj)

        for loc in onboard:
            owner = basic[loc]
            if owner == C_EMPTY or is_seki[loc] or result[loc] == owner:
                continue
            count += 1 if owner == P_WHITE else -1
            result[loc] = owner
            queue = [loc]
            i = 0
            while i < len(queue):
                cur = queue[i]
                i += 1
                for adj in adj4[cur]:
                    if basic[adj] == owner and result[adj] != owner:
                        result[adj] = owner
                        queue.append(adj)
        return count

    def _calculate_area_for_pla(
        self,
        pla: int,
        safe_big_territories: bool,
        unsafe_big_territories: bool,
        is_multi_stone_suicide_legal: bool,
        result: list[int],
    ) -> None:
        # Benson's algorithm over maximal empty-or-opponent regions, as KataGo's calculateAreaForPla.
        colors = self.colors
        head = self.chain_head
        nxt = self.next_in_chain
        opp = pla ^ 3
        adj4 = self.adj4
        n = self.arr_size

        # region_of: -1 = empty or opp, not yet in a region; -2 = pla stone or wall (never in a region)
        region_of = [-2 if c == pla or c == C_WALL else -1 for c in colors]
        region_points: list[list[int]] = []
        vital_lists: list[list[int]] = []
        num_internal: list[int] = []
        contains_opp: list[bool] = []
        at_least_one_pla = pla in colors

        for loc in self._geo.onboard:
            if region_of[loc] != -1 or colors[loc] != C_EMPTY:
                continue
            region_idx = len(region_points)

            # Every adjacent pla chain starts as a candidate; the flood fill filters them.
            vital: list[int] = []
            for adj in adj4[loc]:
                if colors[adj] == pla:
                    h = head[adj]
                    if h not in vital:
                        vital.append(h)

            internal = 0
            has_opp = False
            region_of[loc] = region_idx
            queue = [loc]
            qi = 0
            # While candidates remain, each point filters them (KataGo: only empty points unless multi-stone
            # suicide is legal); the rest of the fill does without.
            while vital and qi < len(queue):
                cur = queue[qi]
                qi += 1
                a0, a1, a2, a3 = adj4[cur]
                c0 = colors[a0]
                c1 = colors[a1]
                c2 = colors[a2]
                c3 = colors[a3]
                ccur = colors[cur]
                if is_multi_stone_suicide_legal or ccur == C_EMPTY:
                    touching = (
                        head[a0] if c0 == pla else -1,
                        head[a1] if c1 == pla else -1,
                        head[a2] if c2 == pla else -1,
                        head[a3] if c3 == pla else -1,
                    )
                    vital = [h for h in vital if h in touching]
                if internal < 2 and c0 != pla and c1 != pla and c2 != pla and c3 != pla:
                    internal += 1
                if ccur == opp:
                    has_opp = True
                if region_of[a0] == -1:
                    queue.append(a0)
                    region_of[a0] = region_idx
                if region_of[a1] == -1:
                    queue.append(a1)
                    region_of[a1] = region_idx
                if region_of[a2] == -1:
                    queue.append(a2)
                    region_of[a2] = region_idx
                if region_of[a3] == -1:
                    queue.append(a3)
                    region_of[a3] = region_idx
            for cur in islice(queue, qi, None):  # a list iterator also visits the points appended meanwhile
                a0, a1, a2, a3 = adj4[cur]
                if internal < 2 and colors[a0] != pla and colors[a1] != pla and colors[a2] != pla:
                    if colors[a3] != pla:
                        internal += 1
                if not has_opp and colors[cur] == opp:
                    has_opp = True
                if region_of[a0] == -1:
                    queue.append(a0)
                    region_of[a0] = region_idx
                if region_of[a1] == -1:
                    queue.append(a1)
                    region_of[a1] = region_idx
                if region_of[a2] == -1:
                    queue.append(a2)
                    region_of[a2] = region_idx
                if region_of[a3] == -1:
                    queue.append(a3)
                    region_of[a3] = region_idx

            region_points.append(queue)
            vital_lists.append(vital)
            num_internal.append(internal)
            contains_opp.append(has_opp)

        # Heads in increasing loc order (on-board locs are listed in increasing order).
        pla_heads = [loc for loc in self._geo.onboard if colors[loc] == pla and head[loc] == loc]
        killed = [False] * len(pla_heads)
        vital_count = [0] * n
        for vital in vital_lists:
            for h in vital:
                vital_count[h] += 1

        borders_dead = [False] * len(region_points)
        while True:
            killed_anything = False
            for i, pla_head in enumerate(pla_heads):
                if killed[i] or vital_count[pla_head] >= 2:
                    continue
                killed[i] = True
                killed_anything = True
                cur = pla_head
                while True:
                    for adj in adj4[cur]:
                        region_idx = region_of[adj]
                        if region_idx >= 0 and not borders_dead[region_idx]:
                            ca = colors[adj]
                            if ca == C_EMPTY or ca == opp:
                                borders_dead[region_idx] = True
                                for h in vital_lists[region_idx]:
                                    vital_count[h] -= 1
                    cur = nxt[cur]
                    if cur == pla_head:
                        break
            if not killed_anything:
                break

        for i, pla_head in enumerate(pla_heads):
            if not killed[i]:
                cur = pla_head
                while True:
                    result[cur] = pla
                    cur = nxt[cur]
                    if cur == pla_head:
                        break

        if not at_least_one_pla:
            return
        for region_idx, points in enumerate(region_points):
            dead_border = borders_dead[region_idx]
            should_mark = num_internal[region_idx] <= 1 and not dead_border
            should_mark = should_mark or (
                safe_big_territories and not contains_opp[region_idx] and not dead_border
            )
            if should_mark:
                for cur in points:
                    result[cur] = pla
            elif unsafe_big_territories and not contains_opp[region_idx]:
                for cur in points:
                    if result[cur] == C_EMPTY:
                        result[cur] = pla

    # -----------------------------------------------------------------------------------------------------
    # Checks, text

    def check_consistency(self) -> None:
        """Raise AssertionError if the chain bookkeeping, hash or ko point is inconsistent (for tests)."""
        colors = self.colors
        head = self.chain_head
        nxt = self.next_in_chain
        checked = [False] * self.arr_size
        expected_hash = self._geo.base_hash
        onboard = set(self._geo.onboard)
        for loc in range(self.arr_size):
            c = colors[loc]
            if loc not in onboard:
                if c != C_WALL:
                    raise AssertionError(f"non-wall value outside the board at {loc}")
                continue
            if c == C_EMPTY:
                continue
            if c not in (C_BLACK, C_WHITE):
                raise AssertionError(f"invalid colour {c} at {loc}")
            expected_hash ^= _ZB[c][loc]
            if checked[loc]:
                continue
            h = head[loc]
            cur = loc
            count = 0
            pseudo = 0
            found_head = False
            while True:
                checked[cur] = True
                if colors[cur] != c:
                    raise AssertionError("chain is not all the same colour")
                if head[cur] != h:
                    raise AssertionError("chain does not all have the same head")
                count += 1
                pseudo += self.get_num_immediate_liberties(cur)
                if cur == h:
                    found_head = True
                if count > len(onboard):
                    raise AssertionError("broken circular chain list")
                cur = nxt[cur]
                if cur < 0 or cur >= self.arr_size:
                    raise AssertionError("chain link outside the board")
                if cur == loc:
                    break
            if not found_head:
                raise AssertionError("chain loop does not contain its head")
            if self.chain_locs[h] != count:
                raise AssertionError("chain stone count mismatch")
            libs = self.chain_libs[h]
            if libs > pseudo or libs <= 0:
                raise AssertionError("chain liberty count out of range")
            if len(self._first_liberties(loc, -1)) != libs:
                raise AssertionError("chain liberty count mismatch")
        if expected_hash != self.pos_hash:
            raise AssertionError("pos_hash mismatch")
        if self.ko_loc != NULL_LOC:
            if self.ko_loc not in onboard:
                raise AssertionError("invalid ko loc")
            if self.get_num_immediate_liberties(self.ko_loc) != 0:
                raise AssertionError("ko loc has immediate liberties")

    def is_equal_for_testing(
        self, other: Board, check_num_captures: bool = True, check_simple_ko: bool = True
    ) -> bool:
        """Same size, stones, hash (and captures / ko point unless disabled); both must be consistent."""
        self.check_consistency()
        other.check_consistency()
        if self.x_size != other.x_size or self.y_size != other.y_size:
            return False
        if check_simple_ko and self.ko_loc != other.ko_loc:
            return False
        if check_num_captures and (
            self.num_black_captures != other.num_black_captures
            or self.num_white_captures != other.num_white_captures
        ):
            return False
        return self.pos_hash == other.pos_hash and self.colors == other.colors

    @staticmethod
    def parse_board(x_size: int, y_size: int, text: str, line_delimiter: str = "\n") -> Board:
        """Board from an ASCII diagram (``x``/``X`` black, ``o``/``O`` white, ``.`` etc. empty).

        Rows are given top first; an optional column-letter header line and leading row numbers are
        ignored; characters may be separated by single spaces. Stones are placed row by row, as KataGo does,
        and a stone that would leave a chain without liberties raises :class:`PositionError`.
        """
        board = Board(x_size, y_size)
        lines = text.strip(" \t\r\n\v\f").split(line_delimiter)
        if len(lines) == y_size + 1 and lines[0].startswith("A"):
            lines = lines[1:]
        if len(lines) != y_size:
            raise PositionError("Board::parseBoard - string has different number of board rows than ySize")
        for y in range(y_size):
            line = lines[y].strip(" \t\r\n\v\f")
            line = line.lstrip("0123456789").strip(" \t\r\n\v\f")
            if len(line) != x_size and len(line) != 2 * x_size - 1:
                raise PositionError("Board::parseBoard - line length not compatible with xSize")
            for x in range(x_size):
                ch = line[x] if len(line) == x_size else line[x * 2]
                loc = board.get_loc(x, y)
                if ch in ". *,`":
                    continue
                if ch in "oO":
                    color = P_WHITE
                elif ch in "xX":
                    color = P_BLACK
                else:
                    raise PositionError(f"Board::parseBoard - could not parse board character: {ch}")
                if not board.set_stone_fail_if_no_libs(loc, color):
                    raise PositionError(
                        f"Board::parseBoard - zero-liberty group near {board.loc_to_string(loc)}"
                    )
        return board

    def to_string_simple(self, line_delimiter: str = "\n") -> str:
        """Rows of ``X``/``O``/``.``, each followed by ``line_delimiter``."""
        colors = self.colors
        rows = []
        for y in range(self.y_size):
            rows.append("".join(color_to_char(colors[self.get_loc(x, y)]) for x in range(self.x_size)))
            rows.append(line_delimiter)
        return "".join(rows)

    def to_printed(self, mark_loc: int = NULL_LOC, hist: Sequence[tuple[int, int]] | None = None) -> str:
        """KataGo's ``printBoard`` text: hash line, column letters, numbered rows.

        ``hist`` is a list of ``(loc, pla)`` moves; the last three are numbered on the diagram.
        """
        parts = []
        if hist is not None:
            parts.append(f"MoveNum: {len(hist)} ")
        parts.append(f"HASH: {self.pos_hash:032X}\n")
        show_coords = self.x_size <= 50 and self.y_size <= 50
        if show_coords:
            parts.append("  ")
            for x in range(self.x_size):
                if x <= 24:
                    parts.append(" " + "ABCDEFGHJKLMNOPQRSTUVWXYZ"[x])
                else:
                    parts.append("A" + "ABCDEFGHJKLMNOPQRSTUVWXYZ"[x - 25])
            parts.append("\n")
        for y in range(self.y_size):
            if show_coords:
                parts.append(f"{self.y_size - y:2d} ")
            for x in range(self.x_size):
                loc = self.get_loc(x, y)
                c = self.colors[loc]
                parts.append("@" if c == C_EMPTY and mark_loc == loc else color_to_char(c))
                hist_marked = False
                if hist is not None:
                    start = len(hist) - 3 if len(hist) >= 3 else 0
                    for i in range(len(hist) - start):
                        if hist[start + i][0] == loc:
                            parts.append(str(1 + i))
                            hist_marked = True
                            break
                if x < self.x_size - 1 and not hist_marked:
                    parts.append(" ")
            parts.append("\n")
        parts.append("\n")
        return "".join(parts)

    def __str__(self) -> str:
        return self.to_printed()

    def __repr__(self) -> str:
        return f"Board({self.x_size}x{self.y_size}, ko={self.ko_loc}, hash={self.pos_hash:032X})"


def iter_ladders(board: Board) -> list[tuple[int, list[int]]]:
    """Every stone in a ladderable chain, as KataGo's ``iterLadders`` (``cpp/neuralnet/nninputs.cpp``) visits it.

    Scans the board in row-major order; each chain with 1 or 2 liberties is solved once, on one shared copy
    of ``board`` (as KataGo does, so later searches see the chain-list reorderings of earlier ones):
    1 liberty -> :meth:`Board.search_is_ladder_captured` (defender first), 2 liberties ->
    :meth:`Board.search_is_ladder_captured_attacker_first_2libs`. Returns ``(loc, working_moves)`` for each
    stone of a laddered chain; ``working_moves`` is filled only for the first-visited stone of a 2-liberty
    chain (later stones of an already solved chain get ``[]``, exactly like KataGo), and is always ``[]`` for
    1-liberty chains (KataGo's features ignore it there). ``board`` itself is not modified.
    """
    colors = board.colors
    head = board.chain_head
    chain_libs = board.chain_libs
    work = board.copy()
    solved: dict[int, bool] = {}
    found: list[tuple[int, list[int]]] = []
    for loc in board.onboard_locs:
        c = colors[loc]
        if c != C_BLACK and c != C_WHITE:
            continue
        h = head[loc]
        libs = chain_libs[h]
        if libs != 1 and libs != 2:
            continue
        value = solved.get(h)
        if value is not None:
            if value:
                found.append((loc, []))
            continue
        if libs == 1:
            laddered = work.search_is_ladder_captured(loc, True)
            working: list[int] = []
        else:
            laddered, working = work.search_is_ladder_captured_attacker_first_2libs(loc)
        solved[h] = laddered
        if laddered:
            found.append((loc, working))
    return found
