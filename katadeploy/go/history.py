"""Game history with KataGo's rules semantics (a port of the behaviour of ``cpp/game/boardhistory.cpp``).

Contract
--------
:class:`BoardHistory` owns the current :class:`~katadeploy.go.board.Board` (``hist.board``) and everything KataGo's
``BoardHistory`` tracks that matters for neural-net features and move legality:

* the move list (``move_history``: ``(loc, pla)`` tuples) and a ring of the 6 most recent boards
  (:meth:`get_recent_board`), used for the history and ladder channels;
* simple ko (``board.ko_loc``), positional / situational superko bans (``super_ko_banned``, recomputed after every
  move exactly as KataGo does), encore phases with ko-recapture blocks (``ko_recap_blocked``) and once-per-position
  ko captures, second-encore start colours;
* pass bookkeeping: consecutive ending passes, spight-style repeated-position passes, :meth:`pass_would_end_phase`,
  :meth:`pass_would_end_game`, :meth:`should_suppress_end_game_from_friendly_pass`, game end and scoring;
* ``white_bonus_score`` (territory-scoring stone/capture/move accounting and the button) and
  ``white_handicap_bonus_score`` (handicap counting, including ``assume_multiple_starting_black_moves_are_handicap``);
* ``num_approx_valid_turns_this_phase`` (history visible to the net), ``presumed_next_move_pla``, ``has_button``.

Moves are made with :meth:`make_board_move_assume_legal` (KataGo's tolerant-to-anything update) or
:meth:`make_board_move_tolerant` (KataGo's SGF/GTP/analysis replay check: occupied points and single-stone suicide are
refused, ko and multi-stone suicide are tolerated). :meth:`is_legal` is the strict check nneval uses for the policy.

Ko hashes are built from the board's Zobrist values (KataGo's own), so ``ko_hash_history`` and
``ko_recap_block_hash`` hold the same numbers as KataGo's. KataGo's quirks are kept on purpose (e.g. ``clear`` reads
the *previous* encore phase when deciding ``has_button``).
"""

from __future__ import annotations

from collections.abc import Sequence

from katadeploy.go import board as B
from katadeploy.go.board import get_opp
from katadeploy.go.rules import (
    KO_POSITIONAL,
    KO_SIMPLE,
    KO_SITUATIONAL,
    KO_SPIGHT,
    SCORING_AREA,
    SCORING_TERRITORY,
    TAX_ALL,
    TAX_NONE,
    TAX_SEKI,
    WHB_N,
    WHB_N_MINUS_ONE,
    WHB_ZERO,
    Rules,
)

PASS_LOC: int = B.PASS_LOC
NULL_LOC: int = B.NULL_LOC
C_EMPTY: int = B.C_EMPTY
C_BLACK: int = B.C_BLACK
C_WHITE: int = B.C_WHITE
C_WALL: int = B.C_WALL
P_BLACK = C_BLACK
P_WHITE = C_WHITE

NUM_RECENT_BOARDS = 6

_PLAYER_HASH = B.ZOBRIST_PLAYER_HASH


def _ko_mark_hash(loc: int) -> int:
    """KataGo folds both colours' ko-mark hashes together for a ko-recapture block."""
    row = B.ZOBRIST_KO_MARK_HASH[loc]
    return row[C_BLACK] ^ row[C_WHITE]


def _on_board_locs(board: B.Board) -> list[int]:
    xs = board.x_size
    stride = xs + 1
    return [(x + 1) + (y + 1) * stride for y in range(board.y_size) for x in range(xs)]


def _arr_size(board: B.Board) -> int:
    return (board.x_size + 1) * (board.y_size + 2) + 1


def is_legal_ignoring_ko(board: B.Board, loc: int, pla: int, multi_stone_suicide_legal: bool) -> bool:
    """KataGo's ``Board::isLegalIgnoringKo`` (walls and out-of-range locs are illegal)."""
    if loc != PASS_LOC and not board.is_on_board(loc):
        return False
    return board.is_legal_ignoring_ko(loc, pla, multi_stone_suicide_legal)


def num_handicap_stones_on_board(board: B.Board, black_non_pass_turns_to_start: int = 0) -> int:
    """KataGo's handicap count for a starting board: black stones (+ extra black turns) if there is no white stone
    and the black advantage is at least 2, else 0."""
    colors = board.colors
    nb = nw = 0
    for loc in _on_board_locs(board):
        c = colors[loc]
        if c == C_BLACK:
            nb += 1
        elif c == C_WHITE:
            nw += 1
    if nw != 0:
        return 0
    advantage = nb + black_non_pass_turns_to_start
    return 0 if advantage <= 1 else advantage


class BoardHistory:
    """KataGo's ``BoardHistory`` together with the current board (``self.board``)."""

    def __init__(
        self,
        board: B.Board,
        pla: int,
        rules: Rules,
        encore_phase: int = 0,
        always_compute_pass_alive_under_suicide_rules: bool = False,
    ) -> None:
        self.always_compute_pass_alive_under_suicide_rules = always_compute_pass_alive_under_suicide_rules
        self.clear(board, pla, rules, encore_phase)

    # ------------------------------------------------------------------------------------------------ setup
    def clear(self, board: B.Board, pla: int, rules: Rules, encore_phase: int = 0) -> None:
        """Reset all history to start from ``board`` with ``pla`` to move (KataGo's ``clear``).

        Keeps ``always_compute_pass_alive_under_suicide_rules``; resets the handicap settings.
        """
        if encore_phase not in (0, 1, 2):
            raise ValueError(f"encore phase must be 0, 1 or 2, got {encore_phase}")
        if encore_phase > 0 and rules.scoring_rule != SCORING_TERRITORY:
            raise ValueError("encore phases exist only under territory scoring")
        self.rules = rules
        self.board = board.copy()
        self.move_history: list[tuple[int, int]] = []
        self.prevent_encore_history: list[bool] = []
        self.ko_hash_history: list[int] = []
        self._ko_hash_counts: dict[int, int] = {}
        self.first_turn_idx_with_ko_history = 0

        self.initial_board = board.copy()
        self.initial_pla = pla
        self.initial_encore_phase = encore_phase
        self.initial_turn_number = 0
        self.assume_multiple_starting_black_moves_are_handicap = False
        self.white_has_moved = False
        self.override_num_handicap_stones = -1

        self.recent_boards: list[B.Board] = [self.initial_board] * NUM_RECENT_BOARDS
        self.current_recent_board_idx = 0
        self.presumed_next_move_pla = pla

        n = _arr_size(board)
        self._on_board = _on_board_locs(board)
        colors = board.colors
        self.was_ever_occupied_or_played = [False] * n
        for loc in self._on_board:
            self.was_ever_occupied_or_played[loc] = colors[loc] != C_EMPTY
        self.super_ko_banned = [False] * n
        self.consecutive_ending_passes = 0
        self.hashes_before_black_pass: list[int] = []
        self.hashes_before_white_pass: list[int] = []
        self.num_turns_this_phase = 0
        self.num_approx_valid_turns_this_phase = 0
        self.num_consec_valid_turns_this_game = 0
        self.ko_recap_blocked = [False] * n
        self.ko_recap_block_hash = 0
        self.ko_captures_in_encore: list[tuple[int, int, int]] = []
        self.white_bonus_score = 0.0
        self.white_handicap_bonus_score = 0.0
        # KataGo tests the encore phase *before* updating it here (the previous phase on a re-clear).
        self.has_button = rules.has_button and getattr(self, "encore_phase", 0) == 0
        self.is_past_normal_phase_end = False
        self.is_game_finished = False
        self.winner = C_EMPTY
        self.final_white_minus_black_score = 0.0
        self.is_scored = False
        self.is_no_result = False
        self.is_resignation = False

        self.encore_phase = encore_phase
        if encore_phase == 2:
            self.second_encore_start_colors = list(colors[:n])
        else:
            self.second_encore_start_colors = [C_EMPTY] * n

        self._push_ko_hash(self._ko_hash(pla))

        if rules.scoring_rule == SCORING_TERRITORY:
            for loc in self._on_board:
                c = colors[loc]
                if c == C_BLACK:
                    self.white_bonus_score += 1.0
                elif c == C_WHITE:
                    self.white_bonus_score -= 1.0
            net_white_captures = board.num_white_captures - board.num_black_captures
            self.white_bonus_score -= float(net_white_captures)
        self.white_handicap_bonus_score = float(self.compute_white_handicap_bonus())

    def copy(self) -> BoardHistory:
        """An independent copy (boards are copied; the recent-board ring shares immutable snapshots)."""
        h = BoardHistory.__new__(BoardHistory)
        h.__dict__.update(self.__dict__)
        h.board = self.board.copy()
        h.recent_boards = list(self.recent_boards)
        h.move_history = list(self.move_history)
        h.prevent_encore_history = list(self.prevent_encore_history)
        h.ko_hash_history = list(self.ko_hash_history)
        h._ko_hash_counts = dict(self._ko_hash_counts)
        h.was_ever_occupied_or_played = list(self.was_ever_occupied_or_played)
        h.super_ko_banned = list(self.super_ko_banned)
        h.hashes_before_black_pass = list(self.hashes_before_black_pass)
        h.hashes_before_white_pass = list(self.hashes_before_white_pass)
        h.ko_recap_blocked = list(self.ko_recap_blocked)
        h.ko_captures_in_encore = list(self.ko_captures_in_encore)
        h.second_encore_start_colors = list(self.second_encore_start_colors)
        return h

    def set_komi(self, komi: float) -> None:
        """Change only the komi (re-scores a finished, scored game)."""
        old = self.rules.komi
        self.rules = self.rules.with_komi(komi)
        if self.is_game_finished and self.is_scored:
            self._set_final_score_and_winner(self.final_white_minus_black_score - old + self.rules.komi)

    def set_initial_turn_number(self, n: int) -> None:
        self.initial_turn_number = n

    def set_assume_multiple_starting_black_moves_are_handicap(self, b: bool) -> None:
        self.assume_multiple_starting_black_moves_are_handicap = b
        self.white_handicap_bonus_score = float(self.compute_white_handicap_bonus())

    def set_override_num_handicap_stones(self, n: int) -> None:
        self.override_num_handicap_stones = n
        self.white_handicap_bonus_score = float(self.compute_white_handicap_bonus())

    def suicide_legal_for_pass_alive(self) -> bool:
        return self.rules.multi_stone_suicide_legal or self.always_compute_pass_alive_under_suicide_rules

    # ------------------------------------------------------------------------------------------------ handicap
    def compute_num_handicap_stones(self) -> int:
        if self.override_num_handicap_stones >= 0:
            return self.override_num_handicap_stones
        black_turns = 0
        if self.assume_multiple_starting_black_moves_are_handicap:
            mh = self.move_history
            for i, (loc, pla) in enumerate(mh):
                if pla != P_BLACK:
                    if i + 1 < len(mh) and mh[i + 1][1] != P_BLACK:
                        black_turns = 0
                        break
                    if loc == PASS_LOC:
                        continue
                    break
                if loc != PASS_LOC and loc != NULL_LOC:
                    black_turns += 1
        return num_handicap_stones_on_board(self.initial_board, black_turns)

    def compute_white_handicap_bonus(self) -> int:
        whb = self.rules.white_handicap_bonus_rule
        if whb == WHB_ZERO:
            return 0
        n = self.compute_num_handicap_stones()
        if whb == WHB_N:
            return n
        if whb == WHB_N_MINUS_ONE:
            return n - 1 if n > 1 else 0
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------------------------------------ komi
    def white_komi_adjustment_for_draws(self, draw_equivalent_wins_for_white: float) -> float:
        return (draw_equivalent_wins_for_white - 0.5) if self.rules.game_result_will_be_integer() else 0.0

    def current_self_komi(self, pla: int, draw_equivalent_wins_for_white: float) -> float:
        """Komi (with bonuses and the draw adjustment) from ``pla``'s point of view, as KataGo computes it."""
        w = (
            self.white_bonus_score
            + self.white_handicap_bonus_score
            + self.rules.komi
            + self.white_komi_adjustment_for_draws(draw_equivalent_wins_for_white)
        )
        if pla == P_WHITE:
            return w
        if pla == P_BLACK:
            return -w
        raise ValueError(f"bad player {pla}")

    # ------------------------------------------------------------------------------------------------ queries
    def get_recent_board(self, num_moves_ago: int) -> B.Board:
        """The board ``num_moves_ago`` moves ago (0 = now); beyond the history, the starting board."""
        if not 0 <= num_moves_ago < NUM_RECENT_BOARDS:
            raise IndexError(f"num_moves_ago must be in 0..{NUM_RECENT_BOARDS - 1}")
        if num_moves_ago == 0:
            return self.board
        return self.recent_boards[(self.current_recent_board_idx - num_moves_ago) % NUM_RECENT_BOARDS]

    def current_turn_number(self) -> int:
        return max(0, self.initial_turn_number + len(self.move_history))

    def is_legal(self, loc: int, pla: int) -> bool:
        """KataGo's ``BoardHistory::isLegal`` on the current board: the right player, simple ko (main phase),
        encore pass-for-ko, suicide per the rules and superko bans. Off-board locations are illegal."""
        board = self.board
        if pla != self.presumed_next_move_pla:
            return False
        n = len(board.colors)
        if self.encore_phase > 0:
            if 0 <= loc < n and loc != PASS_LOC and loc != NULL_LOC:
                opp = get_opp(pla)
                if (
                    board.colors[loc] == opp
                    and self.ko_recap_blocked[loc]
                    and board.get_chain_size(loc) == 1
                    and board.get_num_liberties(loc) == 1
                ):
                    return True
                if board.colors[loc] != C_WALL:
                    kcl = board.get_ko_capture_loc(loc, pla)
                    if kcl != NULL_LOC and self.ko_recap_blocked[kcl] and board.colors[kcl] == opp:
                        return True
        elif loc == board.ko_loc:
            return False
        if not is_legal_ignoring_ko(board, loc, pla, self.rules.multi_stone_suicide_legal):
            return False
        if loc != PASS_LOC and self.super_ko_banned[loc]:
            return False
        return True

    def is_pass_for_ko(self, loc: int, pla: int) -> bool:
        board = self.board
        if self.encore_phase > 0 and 0 <= loc < len(board.colors) and loc != PASS_LOC and loc != NULL_LOC:
            if board.colors[loc] == C_WALL:
                return False
            opp = get_opp(pla)
            if (
                board.colors[loc] == opp
                and self.ko_recap_blocked[loc]
                and board.get_chain_size(loc) == 1
                and board.get_num_liberties(loc) == 1
            ):
                return True
            kcl = board.get_ko_capture_loc(loc, pla)
            if kcl != NULL_LOC and self.ko_recap_blocked[kcl] and board.colors[kcl] == opp:
                return True
        return False

    def is_legal_tolerant(self, loc: int, pla: int) -> bool:
        """KataGo's ``isLegalTolerant``: either colour; ko and multi-stone suicide tolerated."""
        if pla != P_BLACK and pla != P_WHITE:
            return False
        if not self.is_pass_for_ko(loc, pla) and not is_legal_ignoring_ko(self.board, loc, pla, True):
            return False
        return True

    def _new_consecutive_ending_passes_after_pass(self) -> int:
        n = self.consecutive_ending_passes
        if self.encore_phase > 0:
            return n + 1
        kr = self.rules.ko_rule
        if kr in (KO_SIMPLE, KO_POSITIONAL, KO_SITUATIONAL):
            return n + 1
        if kr == KO_SPIGHT:
            return 0
        raise AssertionError("unreachable")

    def _phase_has_spightlike_ending_and_pass_history_clearing(self) -> bool:
        return self.encore_phase > 0 or self.rules.ko_rule in (KO_SIMPLE, KO_SPIGHT)

    def _would_be_spightlike_ending_pass(self, pla: int, ko_hash_before: int) -> bool:
        if self._phase_has_spightlike_ending_and_pass_history_clearing():
            if pla == P_BLACK and ko_hash_before in self.hashes_before_black_pass:
                return True
            if pla == P_WHITE and ko_hash_before in self.hashes_before_white_pass:
                return True
        return False

    def pass_would_end_phase(self, pla: int) -> bool:
        if self._new_consecutive_ending_passes_after_pass() >= 2:
            return True
        return self._would_be_spightlike_ending_pass(pla, self._ko_hash(pla))

    def is_final_phase(self) -> bool:
        return self.rules.scoring_rule == SCORING_AREA or (
            self.rules.scoring_rule == SCORING_TERRITORY and self.encore_phase >= 2
        )

    def pass_would_end_game(self, pla: int) -> bool:
        return self.pass_would_end_phase(pla) and self.is_final_phase()

    def should_suppress_end_game_from_friendly_pass(self, pla: int) -> bool:
        return (
            self.rules.friendly_pass_ok
            and self.rules.scoring_rule == SCORING_AREA
            and self._new_consecutive_ending_passes_after_pass() == 2
            and not self._would_be_spightlike_ending_pass(pla, self._ko_hash(pla))
        )

    # ------------------------------------------------------------------------------------------------ hashes
    def _ko_hash(self, pla: int) -> int:
        r = self.rules.ko_rule
        if r == KO_SITUATIONAL or r == KO_SIMPLE or self.encore_phase > 0:
            return self.board.pos_hash ^ _PLAYER_HASH[pla] ^ self.ko_recap_block_hash
        return self.board.pos_hash ^ self.ko_recap_block_hash

    def _push_ko_hash(self, h: int) -> None:
        self.ko_hash_history.append(h)
        self._ko_hash_counts[h] = self._ko_hash_counts.get(h, 0) + 1

    def _clear_ko_hash_history(self) -> None:
        self.ko_hash_history = []
        self._ko_hash_counts = {}

    def _set_ko_recap_blocked(self, loc: int, b: bool) -> None:
        if self.ko_recap_blocked[loc] != b:
            self.ko_recap_blocked[loc] = b
            self.ko_recap_block_hash ^= _ko_mark_hash(loc)

    # ------------------------------------------------------------------------------------------------ scoring
    def _count_area_score_white_minus_black(self, area: list[int]) -> int:
        board = self.board
        score = 0
        sui = self.suicide_legal_for_pass_alive()
        tax = self.rules.tax_rule
        if tax == TAX_NONE:
            board.calculate_area(area, True, True, True, sui)
        elif tax in (TAX_SEKI, TAX_ALL):
            _, count = board.calculate_independent_life_area(area, False, True, sui)
            if tax == TAX_ALL:
                score -= 2 * count
        for loc in self._on_board:
            if area[loc] == C_WHITE:
                score += 1
            elif area[loc] == C_BLACK:
                score -= 1
        return score

    def _count_territory_area_score_white_minus_black(self, area: list[int]) -> int:
        board = self.board
        score = 0
        keep_territories = self.rules.tax_rule == TAX_NONE
        _, count = board.calculate_independent_life_area(
            area, keep_territories, False, self.suicide_legal_for_pass_alive()
        )
        colors = board.colors
        secs = self.second_encore_start_colors
        for loc in self._on_board:
            a = area[loc]
            if a == C_WHITE:
                score += 1
            elif a == C_BLACK:
                score -= 1
            else:
                c = colors[loc]
                if c == C_WHITE and (self.encore_phase < 2 or secs[loc] == C_WHITE):
                    score += 1
                    area[loc] = C_WHITE
                if c == C_BLACK and (self.encore_phase < 2 or secs[loc] == C_BLACK):
                    score -= 1
                    area[loc] = C_BLACK
        if self.rules.tax_rule == TAX_ALL:
            score -= 2 * count
        return score

    def _set_final_score_and_winner(self, score: float) -> None:
        self.final_white_minus_black_score = score
        self.winner = C_WHITE if score > 0 else (C_BLACK if score < 0 else C_EMPTY)

    def get_area_now(self) -> list[int]:
        """The ownership KataGo would score now, one colour per loc."""
        area = [C_EMPTY] * len(self.board.colors)
        if self.rules.scoring_rule == SCORING_AREA:
            self._count_area_score_white_minus_black(area)
        else:
            self._count_territory_area_score_white_minus_black(area)
        return area

    def end_and_score_game_now(self) -> list[int]:
        """Score the board as it is and mark the game finished; returns the area used."""
        area = [C_EMPTY] * len(self.board.colors)
        if self.rules.scoring_rule == SCORING_AREA:
            board_score = self._count_area_score_white_minus_black(area)
        else:
            board_score = self._count_territory_area_score_white_minus_black(area)
        if self.has_button:
            self.has_button = False
            self.white_bonus_score += 0.5 if self.presumed_next_move_pla == P_WHITE else -0.5
        self._set_final_score_and_winner(
            board_score + self.white_bonus_score + self.white_handicap_bonus_score + self.rules.komi
        )
        self.is_scored = True
        self.is_no_result = False
        self.is_resignation = False
        self.is_game_finished = True
        self.is_past_normal_phase_end = False
        return area

    def set_winner_by_resignation(self, pla: int) -> None:
        self.is_game_finished = True
        self.is_past_normal_phase_end = False
        self.is_scored = False
        self.is_no_result = False
        self.is_resignation = True
        self.winner = pla
        self.final_white_minus_black_score = 0.0

    # ------------------------------------------------------------------------------------------------ moves
    def make_board_move_tolerant(self, loc: int, pla: int, prevent_encore: bool = False) -> bool:
        """Play with KataGo's tolerant check (see :meth:`is_legal_tolerant`); False (and no change) if refused."""
        if not self.is_legal_tolerant(loc, pla):
            return False
        self.make_board_move_assume_legal(loc, pla, prevent_encore)
        return True

    def make_board_move_assume_legal(self, loc: int, pla: int, prevent_encore: bool = False) -> None:
        """KataGo's ``makeBoardMoveAssumeLegal``: play ``pla`` at ``loc`` (or pass) and update all state.

        The move must at least be pseudo-legal (empty point, not single-stone suicide); ko/superko violations and
        moves after the game ended are handled gracefully, as in KataGo.
        """
        board = self.board
        rules = self.rules
        pos_hash_before = board.pos_hash

        if self.is_game_finished or self.is_past_normal_phase_end:
            self.num_approx_valid_turns_this_phase = min(self.num_approx_valid_turns_this_phase, 1)
            self.num_consec_valid_turns_this_game = min(self.num_consec_valid_turns_this_game, 1)

        move_is_illegal = not self.is_legal(loc, pla)

        self.is_game_finished = False
        self.is_past_normal_phase_end = False
        self.winner = C_EMPTY
        self.final_white_minus_black_score = 0.0
        self.is_scored = False
        self.is_no_result = False
        self.is_resignation = False

        is_spightlike_ending_pass = False
        if loc != PASS_LOC:
            self.consecutive_ending_passes = 0
        elif self.has_button:
            self.has_button = False
            self.white_bonus_score += 0.5 if pla == P_WHITE else -0.5
            self.consecutive_ending_passes = 0
            self.hashes_before_black_pass = []
            self.hashes_before_white_pass = []
            self._clear_ko_hash_history()
            self.first_turn_idx_with_ko_history = len(self.move_history) + 1
        else:
            if self._phase_has_spightlike_ending_and_pass_history_clearing():
                self._clear_ko_hash_history()
                self.first_turn_idx_with_ko_history = len(self.move_history) + 1
            ko_hash_before = self._ko_hash(pla)
            self.consecutive_ending_passes = self._new_consecutive_ending_passes_after_pass()
            is_spightlike_ending_pass = self._would_be_spightlike_ending_pass(pla, ko_hash_before)
            if pla == P_BLACK:
                self.hashes_before_black_pass.append(ko_hash_before)
            elif pla == P_WHITE:
                self.hashes_before_white_pass.append(ko_hash_before)
            else:
                raise ValueError(f"bad player {pla}")

        # Pass-for-ko in the encore lifts a ko recapture block and does nothing else.
        was_pass_for_ko = False
        if self.encore_phase > 0 and loc != PASS_LOC:
            opp = get_opp(pla)
            if board.colors[loc] == opp and self.ko_recap_blocked[loc]:
                self._set_ko_recap_blocked(loc, False)
                was_pass_for_ko = True
                board.clear_simple_ko_loc()
            else:
                kcl = board.get_ko_capture_loc(loc, pla)
                if kcl != NULL_LOC and self.ko_recap_blocked[kcl] and board.colors[kcl] == opp:
                    self._set_ko_recap_blocked(kcl, False)
                    was_pass_for_ko = True
                    board.clear_simple_ko_loc()
        if not was_pass_for_ko:
            board.play_move_assume_legal(loc, pla)
            if self.encore_phase > 0:
                if board.ko_loc != NULL_LOC:
                    self._set_ko_recap_blocked(loc, True)
                    self.ko_captures_in_encore.append((pos_hash_before, loc, pla))
                    board.clear_simple_ko_loc()
                colors = board.colors
                for l2 in self._on_board:
                    if colors[l2] == C_EMPTY and self.ko_recap_blocked[l2]:
                        self._set_ko_recap_blocked(l2, False)

        # The ring keeps snapshots; the live board is self.board.
        self.current_recent_board_idx = (self.current_recent_board_idx + 1) % NUM_RECENT_BOARDS
        self.recent_boards[self.current_recent_board_idx] = board.copy()

        next_pla = get_opp(pla)
        self._push_ko_hash(self._ko_hash(next_pla))
        self.move_history.append((loc, pla))
        self.prevent_encore_history.append(prevent_encore)
        self.num_turns_this_phase += 1
        self.num_approx_valid_turns_this_phase += 1
        self.num_consec_valid_turns_this_game += 1
        self.presumed_next_move_pla = next_pla

        if move_is_illegal:
            self.num_consec_valid_turns_this_game = 0
        if loc != PASS_LOC:
            self.was_ever_occupied_or_played[loc] = True

        if self.encore_phase <= 0 and rules.ko_rule != KO_SIMPLE:
            self._update_superko_bans(next_pla)
        elif self.encore_phase > 0:
            banned = [False] * len(self.super_ko_banned)
            for ph, mloc, mpla in self.ko_captures_in_encore:
                if ph == board.pos_hash and mpla == next_pla:
                    banned[mloc] = True
            self.super_ko_banned = banned

        if (
            rules.scoring_rule == SCORING_TERRITORY
            and self.encore_phase <= 1
            and loc != PASS_LOC
            and not was_pass_for_ko
        ):
            self.white_bonus_score += 1.0 if pla == P_BLACK else -1.0

        if pla == P_WHITE and loc != PASS_LOC:
            self.white_has_moved = True
        if (
            self.assume_multiple_starting_black_moves_are_handicap
            and not self.white_has_moved
            and pla == P_BLACK
            and rules.white_handicap_bonus_rule != WHB_ZERO
        ):
            self.white_handicap_bonus_score = float(self.compute_white_handicap_bonus())

        if self.consecutive_ending_passes >= 2 or is_spightlike_ending_pass:
            if rules.scoring_rule == SCORING_AREA:
                self.end_and_score_game_now()
            elif self.encore_phase >= 2:
                self.end_and_score_game_now()
            elif prevent_encore:
                self.is_past_normal_phase_end = True
                self.num_approx_valid_turns_this_phase = min(self.num_approx_valid_turns_this_phase, 1)
                self.num_consec_valid_turns_this_game = min(self.num_consec_valid_turns_this_game, 1)
            else:
                self.encore_phase += 1
                self.num_turns_this_phase = 0
                self.num_approx_valid_turns_this_phase = 0
                if self.encore_phase == 2:
                    self.second_encore_start_colors = list(
                        board.colors[: len(self.second_encore_start_colors)]
                    )
                self.super_ko_banned = [False] * len(self.super_ko_banned)
                self.consecutive_ending_passes = 0
                self.hashes_before_black_pass = []
                self.hashes_before_white_pass = []
                self.ko_recap_blocked = [False] * len(self.ko_recap_blocked)
                self.ko_recap_block_hash = 0
                self.ko_captures_in_encore = []
                self._clear_ko_hash_history()
                self._push_ko_hash(self._ko_hash(next_pla))
                self.first_turn_idx_with_ko_history = len(self.move_history)

        if loc != PASS_LOC and (self.encore_phase > 0 or rules.ko_rule == KO_SIMPLE):
            if self._ko_hash_counts.get(self.ko_hash_history[-1], 0) >= 3:
                self.is_no_result = True
                self.is_game_finished = True

    def _update_superko_bans(self, next_pla: int) -> None:
        """Mark every point where ``next_pla`` may not play because of positional/situational superko."""
        board = self.board
        colors = board.colors
        banned = self.super_ko_banned
        ever = self.was_ever_occupied_or_played
        multi = self.rules.multi_stone_suicide_legal
        ko_loc = board.ko_loc
        counts = self._ko_hash_counts
        situational = self.rules.ko_rule == KO_SITUATIONAL
        mover_hash = _PLAYER_HASH[get_opp(next_pla)] if situational else 0
        w = board.x_size + 1
        for loc in self._on_board:
            if colors[loc] != C_EMPTY:
                banned[loc] = False
            elif not ever[loc] and (
                # is_suicide is False whenever a neighbour is empty; test that inline first (same result, faster).
                colors[loc - w] == C_EMPTY
                or colors[loc - 1] == C_EMPTY
                or colors[loc + 1] == C_EMPTY
                or colors[loc + w] == C_EMPTY
                or not board.is_suicide(loc, next_pla)
            ):
                banned[loc] = False
            elif board.is_illegal_suicide(loc, next_pla, multi) or loc == ko_loc:
                banned[loc] = False
            else:
                h = board.get_pos_hash_after_move(loc, next_pla) ^ mover_hash
                banned[loc] = h in counts

    def has_black_pass_or_white_first(self) -> bool:
        mh = self.move_history
        init_empty = all(self.initial_board.colors[loc] == C_EMPTY for loc in self._on_board)
        if init_empty and mh and mh[0][1] == P_WHITE:
            return True
        nbp = sum(1 for loc, p in mh if loc == PASS_LOC and p == P_BLACK)
        nwp = sum(1 for loc, p in mh if loc == PASS_LOC and p == P_WHITE)
        nbd = sum(1 for i in range(1, len(mh)) if mh[i][1] == P_BLACK and mh[i - 1][1] == P_BLACK)
        nwd = sum(1 for i in range(1, len(mh)) if mh[i][1] == P_WHITE and mh[i - 1][1] == P_WHITE)
        if nbp == 1 and nwp == 0 and nbd == 0 and nwd == 0:
            return True
        return nbp == 0 and nwp == 0 and nbd == 0 and nwd == 1


def replay(
    board: B.Board, pla: int, rules: Rules, moves: Sequence[tuple[int, int]], prevent_encore: bool = False
) -> BoardHistory:
    """Convenience: a history from ``board`` with ``pla`` to move, then ``moves`` played with assume-legal."""
    hist = BoardHistory(board, pla, rules)
    for loc, p in moves:
        hist.make_board_move_assume_legal(loc, p, prevent_encore)
    return hist
