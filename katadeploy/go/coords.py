"""Board locations: KataGo's ``Loc`` encoding and GTP vertex text.

Contract (identical to KataGo v1.17.2 ``Location`` in ``cpp/game/board.{h,cpp}``):

* A point ``(x, y)`` of a board ``x_size`` wide is the integer ``loc = (x+1) + (y+1)*(x_size+1)``.
  Column ``x`` runs left to right, row ``y = 0`` is the **top** row. The board is surrounded by a one
  point wall, so every on-board loc has four valid neighbours ``loc-(x_size+1), loc-1, loc+1, loc+(x_size+1)``
  (always examined in that order).
* ``NULL_LOC = 0`` (no location) and ``PASS_LOC = 1`` (a pass); both are wall cells of every board, so no
  stone can ever sit on them.
* GTP text: columns ``A..Z`` without ``I`` (25 letters); beyond that two letters ``AA, AB, ...`` where the
  value is ``(first+1)*25 + second``. Row numbers count from the **bottom** (``row = y_size - y``).
  ``pass``/``pss`` (any case) mean a pass; ``(x,y)`` is the machine form. Parsing is case-insensitive and
  trims whitespace. A vertex that does not fit the given size raises :class:`~katadeploy.errors.PositionError`.

All helpers are pure functions of their arguments; they work for any size (the text form works up to
25*25 columns, like KataGo).
"""

from __future__ import annotations

import math
import re

from katadeploy.errors import PositionError

NULL_LOC = 0
PASS_LOC = 1

#: GTP column letters (no ``I``).
COLUMN_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"

_WHITESPACE = " \t\r\n\v\f"
_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


def get_loc(x: int, y: int, x_size: int) -> int:
    """Loc of column ``x``, row ``y`` (0 = top) on a board ``x_size`` wide."""
    return (x + 1) + (y + 1) * (x_size + 1)


def get_x(loc: int, x_size: int) -> int:
    """Column of ``loc`` (0-based, left to right)."""
    return (loc % (x_size + 1)) - 1


def get_y(loc: int, x_size: int) -> int:
    """Row of ``loc`` (0-based, 0 = top row)."""
    return (loc // (x_size + 1)) - 1


def get_xy(loc: int, x_size: int) -> tuple[int, int]:
    """``(x, y)`` of ``loc``."""
    return (loc % (x_size + 1)) - 1, (loc // (x_size + 1)) - 1


def get_adjacent_offsets(x_size: int) -> tuple[int, int, int, int, int, int, int, int]:
    """Offsets to the 4 orthogonal neighbours (up, left, right, down) then the 4 diagonals."""
    w = x_size + 1
    return (-w, -1, 1, w, -w - 1, -w + 1, w - 1, w + 1)


def is_adjacent(loc0: int, loc1: int, x_size: int) -> bool:
    """True if the two locs are orthogonal neighbours."""
    w = x_size + 1
    return loc0 == loc1 - w or loc0 == loc1 - 1 or loc0 == loc1 + 1 or loc0 == loc1 + w


def get_mirror_loc(loc: int, x_size: int, y_size: int) -> int:
    """Point reflection through the board centre (``NULL_LOC``/``PASS_LOC`` map to themselves)."""
    if loc == NULL_LOC or loc == PASS_LOC:
        return loc
    return get_loc(x_size - 1 - get_x(loc, x_size), y_size - 1 - get_y(loc, x_size), x_size)


def get_center_loc(x_size: int, y_size: int) -> int:
    """The centre point, or ``NULL_LOC`` when either side is even."""
    if x_size % 2 == 0 or y_size % 2 == 0:
        return NULL_LOC
    return get_loc(x_size // 2, y_size // 2, x_size)


def is_central(loc: int, x_size: int, y_size: int) -> bool:
    """True for the 1, 2 or 4 most central points."""
    x = get_x(loc, x_size)
    y = get_y(loc, x_size)
    return (x_size - 1) // 2 <= x <= x_size // 2 and (y_size - 1) // 2 <= y <= y_size // 2


def is_near_central(loc: int, x_size: int, y_size: int) -> bool:
    """True within one line of the central points."""
    x = get_x(loc, x_size)
    y = get_y(loc, x_size)
    return (x_size - 1) // 2 - 1 <= x <= x_size // 2 + 1 and (y_size - 1) // 2 - 1 <= y <= y_size // 2 + 1


def distance(loc0: int, loc1: int, x_size: int) -> int:
    """Manhattan distance between two on-board locs."""
    dx = get_x(loc1, x_size) - get_x(loc0, x_size)
    dy = (loc1 - loc0 - dx) // (x_size + 1)
    return abs(dx) + abs(dy)


def euclidean_distance_squared(loc0: int, loc1: int, x_size: int) -> int:
    """Squared Euclidean distance between two on-board locs."""
    dx = get_x(loc1, x_size) - get_x(loc0, x_size)
    dy = (loc1 - loc0 - dx) // (x_size + 1)
    return dx * dx + dy * dy


def sqrt_board_area(x_size: int, y_size: int) -> float:
    """``sqrt(x_size*y_size)`` (exactly ``x_size`` for square boards)."""
    if x_size == y_size:
        return float(x_size)
    return math.sqrt(x_size * y_size)


# ---------------------------------------------------------------------------------------------------------
# Text forms


def loc_to_string_mach(loc: int, x_size: int) -> str:
    """Machine form ``(x,y)``; ``pass`` and ``null`` for the two special locs."""
    if loc == PASS_LOC:
        return "pass"
    if loc == NULL_LOC:
        return "null"
    return f"({get_x(loc, x_size)},{get_y(loc, x_size)})"


def loc_to_string(loc: int, x_size: int, y_size: int) -> str:
    """GTP vertex such as ``Q16`` (``pass``/``null`` for the special locs; machine form off the board)."""
    if x_size > 25 * 25:
        return loc_to_string_mach(loc, x_size)
    if loc == PASS_LOC:
        return "pass"
    if loc == NULL_LOC:
        return "null"
    x = get_x(loc, x_size)
    y = get_y(loc, x_size)
    if x >= x_size or x < 0 or y < 0 or y >= y_size:
        return loc_to_string_mach(loc, x_size)
    if x <= 24:
        return f"{COLUMN_LETTERS[x]}{y_size - y}"
    return f"{COLUMN_LETTERS[x // 25 - 1]}{COLUMN_LETTERS[x % 25]}{y_size - y}"


def _letter_value(c: str) -> int | None:
    """Column value of one letter (``I`` is skipped), or None if ``c`` is not a usable letter."""
    if "A" <= c <= "H":
        return ord(c) - ord("A")
    if "a" <= c <= "h":
        return ord(c) - ord("a")
    if "J" <= c <= "Z":
        return ord(c) - ord("A") - 1
    if "j" <= c <= "z":
        return ord(c) - ord("a") - 1
    return None


def _parse_int32(s: str) -> int | None:
    """Integer parse with the same acceptance as C++ ``istream >> int`` on a trimmed string."""
    s = s.strip(_WHITESPACE)
    if not _INT_RE.match(s):
        return None
    value = int(s)
    if value < _INT32_MIN or value > _INT32_MAX:
        return None
    return value


def try_loc_of_string(text: str, x_size: int, y_size: int) -> int | None:
    """Parse a vertex (``Q16``, ``pass``, ``(x,y)``); returns None when it is not valid for the size.

    The machine form ``(x,y)`` is not range checked, as in KataGo.
    """
    s = text.strip(_WHITESPACE)
    if len(s) < 2:
        return None
    low = s.lower()
    if low == "pass" or low == "pss":
        return PASS_LOC
    if s[0] == "(":
        if s[-1] != ")":
            return None
        pieces = s[1:-1].split(",")
        if len(pieces) != 2:
            return None
        x = _parse_int32(pieces[0])
        y = _parse_int32(pieces[1])
        if x is None or y is None:
            return None
        return get_loc(x, y, x_size)
    x = _letter_value(s[0])
    if x is None:
        return None
    if ("A" <= s[1] <= "Z") or ("a" <= s[1] <= "z"):
        x1 = _letter_value(s[1])
        if x1 is None:
            return None
        x = (x + 1) * 25 + x1
        rest = s[2:]
    else:
        rest = s[1:]
    row = _parse_int32(rest)
    if row is None:
        return None
    y = y_size - row
    if x < 0 or y < 0 or x >= x_size or y >= y_size:
        return None
    return get_loc(x, y, x_size)


def loc_of_string(text: str, x_size: int, y_size: int) -> int:
    """Like :func:`try_loc_of_string` but raises :class:`PositionError` on failure."""
    loc = try_loc_of_string(text, x_size, y_size)
    if loc is None:
        raise PositionError(f"Could not parse board location: {text}")
    return loc


def try_loc_of_string_allow_null(text: str, x_size: int, y_size: int) -> int | None:
    """As :func:`try_loc_of_string`, also accepting exactly ``null`` as ``NULL_LOC``."""
    if text == "null":
        return NULL_LOC
    return try_loc_of_string(text, x_size, y_size)


def loc_of_string_allow_null(text: str, x_size: int, y_size: int) -> int:
    """As :func:`loc_of_string`, also accepting exactly ``null`` as ``NULL_LOC``."""
    loc = try_loc_of_string_allow_null(text, x_size, y_size)
    if loc is None:
        raise PositionError(f"Could not parse board location: {text}")
    return loc


def parse_sequence(text: str, x_size: int, y_size: int) -> list[int]:
    """Space-separated vertices to a list of locs."""
    locs = []
    for piece in text.strip(_WHITESPACE).split(" "):
        piece = piece.strip(_WHITESPACE)
        if piece:
            locs.append(loc_of_string(piece, x_size, y_size))
    return locs


class Location:
    """Namespace mirroring KataGo's ``Location`` (snake_case names), for code ported from C++."""

    get_loc = staticmethod(get_loc)
    get_x = staticmethod(get_x)
    get_y = staticmethod(get_y)
    get_adjacent_offsets = staticmethod(get_adjacent_offsets)
    is_adjacent = staticmethod(is_adjacent)
    get_mirror_loc = staticmethod(get_mirror_loc)
    get_center_loc = staticmethod(get_center_loc)
    is_central = staticmethod(is_central)
    is_near_central = staticmethod(is_near_central)
    distance = staticmethod(distance)
    euclidean_distance_squared = staticmethod(euclidean_distance_squared)
    to_string = staticmethod(loc_to_string)
    to_string_mach = staticmethod(loc_to_string_mach)
    try_of_string = staticmethod(try_loc_of_string)
    of_string = staticmethod(loc_of_string)
    try_of_string_allow_null = staticmethod(try_loc_of_string_allow_null)
    of_string_allow_null = staticmethod(loc_of_string_allow_null)
    parse_sequence = staticmethod(parse_sequence)
