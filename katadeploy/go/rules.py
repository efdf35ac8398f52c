"""Go rules as KataGo models them (a port of the behaviour of ``cpp/game/rules.cpp``).

Contract
--------
* :class:`Rules` is a frozen dataclass with the eight fields KataGo's ``Rules`` struct has: ko rule, scoring rule,
  tax rule, multi-stone suicide, button, white handicap bonus rule, friendly-pass-ok and komi. The integer
  constants (``KO_SIMPLE`` ... ``WHB_N_MINUS_ONE``) have KataGo's numeric values.
* :func:`parse_rules` accepts exactly what KataGo's ``Rules::parseRules`` accepts:
  the named presets and their aliases (``tromp-taylor``, ``chinese``, ``chinese-ogs``, ``chinese-kgs``,
  ``japanese``, ``korean``, ``aga``, ``aga-button``, ``bga``, ``french``, ``new-zealand``, ``stone-scoring``,
  ``ancient-territory``, ``goe``/``ing``, ...; case-insensitive, surrounding whitespace ignored),
  a JSON object (as text starting with ``{``) with the keys ``ko``, ``score``/``scoring``, ``tax``, ``suicide``,
  ``hasButton``, ``whiteHandicapBonus``, ``friendlyPassOk``, ``komi``, and the compact legacy form
  ``koPOSITIONALscoreAREAtaxNONEsui1button0whbNfpok0komi7.5``. Defaults when a field is not given follow
  KataGo: Tromp-Taylor-like, tax SEKI for territory scoring, komi 6.5 for territory scoring and 7.0 with a button.
* :func:`rules_from_json` takes an already-decoded JSON object (``dict``), as the analysis engine receives it.
* Unparseable rules raise :class:`RulesError` (a ``ValueError`` and a
  :class:`~katadeploy.errors.KatadeployError`) with a message that names the problem.
* ``komi`` is stored as a Python float holding a float32 value, as KataGo stores it in a C ``float``.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, replace
from typing import Any

from katadeploy.errors import KatadeployError

KO_SIMPLE = 0
KO_POSITIONAL = 1
KO_SITUATIONAL = 2
KO_SPIGHT = 3

SCORING_AREA = 0
SCORING_TERRITORY = 1

TAX_NONE = 0
TAX_SEKI = 1
TAX_ALL = 2

WHB_ZERO = 0
WHB_N = 1
WHB_N_MINUS_ONE = 2

MIN_USER_KOMI = -400.0
MAX_USER_KOMI = 400.0

_KO_NAMES = {
    "SIMPLE": KO_SIMPLE,
    "POSITIONAL": KO_POSITIONAL,
    "SITUATIONAL": KO_SITUATIONAL,
    "SPIGHT": KO_SPIGHT,
}
_SCORING_NAMES = {"AREA": SCORING_AREA, "TERRITORY": SCORING_TERRITORY}
_TAX_NAMES = {"NONE": TAX_NONE, "SEKI": TAX_SEKI, "ALL": TAX_ALL}
_WHB_NAMES = {"0": WHB_ZERO, "N": WHB_N, "N-1": WHB_N_MINUS_ONE}

_WHITESPACE = " \t\r\n\v\f"


class RulesError(KatadeployError, ValueError):
    """Rules text or a rules object that KataGo would not accept (a ``ValueError`` and a ``KatadeployError``)."""


def to_float32(value: float) -> float:
    """Round a Python float to the nearest float32, as a C ``float`` would hold it."""
    return struct.unpack("f", struct.pack("f", value))[0]


def komi_is_int_or_half_int(komi: float) -> bool:
    """KataGo's ``Rules::komiIsIntOrHalfInt``."""
    return math.isfinite(komi) and (komi * 2) == int(komi * 2)


@dataclass(frozen=True)
class Rules:
    """KataGo's ``Rules`` struct. The defaults are KataGo's (closest to Tromp-Taylor)."""

    ko_rule: int = KO_POSITIONAL
    scoring_rule: int = SCORING_AREA
    tax_rule: int = TAX_NONE
    multi_stone_suicide_legal: bool = True
    has_button: bool = False
    white_handicap_bonus_rule: int = WHB_ZERO
    friendly_pass_ok: bool = False
    komi: float = 7.5

    def __post_init__(self) -> None:
        if self.ko_rule not in _KO_NAMES.values():
            raise RulesError(f"invalid ko rule {self.ko_rule!r}")
        if self.scoring_rule not in _SCORING_NAMES.values():
            raise RulesError(f"invalid scoring rule {self.scoring_rule!r}")
        if self.tax_rule not in _TAX_NAMES.values():
            raise RulesError(f"invalid tax rule {self.tax_rule!r}")
        if self.white_handicap_bonus_rule not in _WHB_NAMES.values():
            raise RulesError(f"invalid white handicap bonus rule {self.white_handicap_bonus_rule!r}")
        object.__setattr__(self, "komi", to_float32(float(self.komi)))

    def with_komi(self, komi: float) -> Rules:
        """A copy with another komi (stored as float32)."""
        return replace(self, komi=komi)

    def game_result_will_be_integer(self) -> bool:
        """KataGo's ``gameResultWillBeInteger``: integer komi XOR button."""
        komi_is_integer = float(int(self.komi)) == self.komi
        return komi_is_integer != self.has_button

    def equals_ignoring_komi(self, other: Rules) -> bool:
        return replace(self, komi=0.0) == replace(other, komi=0.0)

    def to_json(self, include_komi: bool = True) -> dict[str, Any]:
        """The JSON object form, with KataGo's key names."""
        out: dict[str, Any] = {
            "ko": write_ko_rule(self.ko_rule),
            "scoring": write_scoring_rule(self.scoring_rule),
            "tax": write_tax_rule(self.tax_rule),
            "suicide": self.multi_stone_suicide_legal,
            "hasButton": self.has_button,
            "whiteHandicapBonus": write_white_handicap_bonus_rule(self.white_handicap_bonus_rule),
            "friendlyPassOk": self.friendly_pass_ok,
        }
        if include_komi:
            out["komi"] = self.komi
        return out

    def to_short_string(self, include_komi: bool = True) -> str:
        """The compact form KataGo prints (``koPOSITIONALscoreAREAtaxNONEsui1komi7.5``); parseable back."""
        s = (
            f"ko{write_ko_rule(self.ko_rule)}score{write_scoring_rule(self.scoring_rule)}"
            f"tax{write_tax_rule(self.tax_rule)}sui{int(self.multi_stone_suicide_legal)}"
        )
        if self.has_button:
            s += "button1"
        if self.white_handicap_bonus_rule != WHB_ZERO:
            s += "whb" + write_white_handicap_bonus_rule(self.white_handicap_bonus_rule)
        if self.friendly_pass_ok:
            s += "fpok1"
        if include_komi:
            s += f"komi{self.komi:g}"
        return s

    def __str__(self) -> str:
        return self.to_short_string()


def write_ko_rule(v: int) -> str:
    return {b: a for a, b in _KO_NAMES.items()}.get(v, "UNKNOWN")


def write_scoring_rule(v: int) -> str:
    return {b: a for a, b in _SCORING_NAMES.items()}.get(v, "UNKNOWN")


def write_tax_rule(v: int) -> str:
    return {b: a for a, b in _TAX_NAMES.items()}.get(v, "UNKNOWN")


def write_white_handicap_bonus_rule(v: int) -> str:
    return {b: a for a, b in _WHB_NAMES.items()}.get(v, "UNKNOWN")


def parse_white_handicap_bonus_rule(s: str) -> int:
    """``"0"``, ``"N"`` or ``"N-1"`` (exact spelling, as KataGo)."""
    if s not in _WHB_NAMES:
        raise RulesError(f'invalid whiteHandicapBonus rule: {s!r} (expected "0", "N" or "N-1")')
    return _WHB_NAMES[s]


def _preset(
    ko: int, scoring: int, tax: int, sui: bool, button: bool, whb: int, fpok: bool, komi: float
) -> Rules:
    return Rules(ko, scoring, tax, sui, button, whb, fpok, komi)


_JAPANESE = _preset(KO_SIMPLE, SCORING_TERRITORY, TAX_SEKI, False, False, WHB_ZERO, False, 6.5)
_CHINESE = _preset(KO_SIMPLE, SCORING_AREA, TAX_NONE, False, False, WHB_N, True, 7.5)
_CHINESE_OGS = _preset(KO_POSITIONAL, SCORING_AREA, TAX_NONE, False, False, WHB_N, True, 7.5)
_STONE_SCORING = _preset(KO_SIMPLE, SCORING_AREA, TAX_ALL, False, False, WHB_ZERO, True, 7.5)
_ANCIENT_TERRITORY = _preset(KO_SIMPLE, SCORING_TERRITORY, TAX_ALL, False, False, WHB_ZERO, False, 6.5)
_AGA_BUTTON = _preset(KO_SITUATIONAL, SCORING_AREA, TAX_NONE, False, True, WHB_N_MINUS_ONE, True, 7.0)
_AGA = _preset(KO_SITUATIONAL, SCORING_AREA, TAX_NONE, False, False, WHB_N_MINUS_ONE, True, 7.5)
_NEW_ZEALAND = _preset(KO_SITUATIONAL, SCORING_AREA, TAX_NONE, True, False, WHB_ZERO, True, 7.0)
_TROMP_TAYLOR = _preset(KO_POSITIONAL, SCORING_AREA, TAX_NONE, True, False, WHB_ZERO, False, 7.5)
_GOE = _preset(KO_POSITIONAL, SCORING_AREA, TAX_NONE, True, False, WHB_ZERO, True, 7.5)


def _aliases(*stems: str) -> list[str]:
    out: list[str] = []
    for stem in stems:
        parts = stem.split(" ")
        if len(parts) == 1:
            out.append(stem)
        else:
            out.extend(sep.join(parts) for sep in ("", "-", "_", " "))
    return out


#: Lower-cased preset names KataGo accepts, mapped to their rules (with the preset's default komi).
PRESETS: dict[str, Rules] = {}
for _names, _rules in (
    (["japanese", "korean"], _JAPANESE),
    (["chinese"], _CHINESE),
    (_aliases("chinese ogs", "chinese kgs"), _CHINESE_OGS),
    (_aliases("ancient area", "stone scoring"), _STONE_SCORING),
    (_aliases("ancient territory"), _ANCIENT_TERRITORY),
    (_aliases("aga button"), _AGA_BUTTON),
    (["aga", "bga", "french"], _AGA),
    (["nz"] + _aliases("new zealand"), _NEW_ZEALAND),
    (["tromp-taylor", "tromp_taylor", "tromp taylor", "tromptaylor"], _TROMP_TAYLOR),
    (["goe", "ing"], _GOE),
):
    for _n in _names:
        PRESETS[_n] = _rules
# KataGo's alias list for chinese-ogs/kgs has no space-separated variant.
PRESETS.pop("chinese ogs", None)
PRESETS.pop("chinese kgs", None)


def _trim(s: str) -> str:
    return s.strip(_WHITESPACE)


def _parse_cpp_float(text: str) -> float | None:
    """Like ``istringstream >> float`` that must consume the whole (trimmed) text; None if it fails."""
    t = _trim(text)
    if not t or t.lower().lstrip("+-") in ("inf", "infinity", "nan") or "_" in t:
        return None
    try:
        return float(t)
    except ValueError:
        return None


def _apply_defaults(rules: Rules, tax_specified: bool, komi_specified: bool) -> Rules:
    if not tax_specified:
        rules = replace(rules, tax_rule=TAX_SEKI if rules.scoring_rule == SCORING_TERRITORY else TAX_NONE)
    if not komi_specified:
        if rules.scoring_rule == SCORING_TERRITORY:
            rules = replace(rules, komi=6.5)
        elif rules.has_button:
            rules = replace(rules, komi=7.0)
    return rules


def rules_from_json(obj: Any, allow_komi: bool = True) -> Rules:
    """Rules from a decoded JSON object, as KataGo parses a rules object (unknown keys are errors)."""
    if not isinstance(obj, dict):
        raise RulesError(f"rules must be a string or a JSON object, got {type(obj).__name__}")
    fields: dict[str, Any] = {}
    tax_specified = False
    komi_specified = False

    def want_str(key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise RulesError(f"rules field {key!r} must be a string, got {value!r}")
        return value

    def want_bool(key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise RulesError(f"rules field {key!r} must be true or false, got {value!r}")
        return value

    for key, value in obj.items():
        if key == "ko":
            v = want_str(key, value)
            if v not in _KO_NAMES:
                raise RulesError(f"invalid ko rule: {v!r} (expected one of {sorted(_KO_NAMES)})")
            fields["ko_rule"] = _KO_NAMES[v]
        elif key in ("score", "scoring"):
            v = want_str(key, value)
            if v not in _SCORING_NAMES:
                raise RulesError(f"invalid scoring rule: {v!r} (expected one of {sorted(_SCORING_NAMES)})")
            fields["scoring_rule"] = _SCORING_NAMES[v]
        elif key == "tax":
            v = want_str(key, value)
            if v not in _TAX_NAMES:
                raise RulesError(f"invalid tax rule: {v!r} (expected one of {sorted(_TAX_NAMES)})")
            fields["tax_rule"] = _TAX_NAMES[v]
            tax_specified = True
        elif key == "suicide":
            fields["multi_stone_suicide_legal"] = want_bool(key, value)
        elif key == "hasButton":
            fields["has_button"] = want_bool(key, value)
        elif key == "whiteHandicapBonus":
            fields["white_handicap_bonus_rule"] = parse_white_handicap_bonus_rule(want_str(key, value))
        elif key == "friendlyPassOk":
            fields["friendly_pass_ok"] = want_bool(key, value)
        elif key == "komi":
            if not allow_komi:
                raise RulesError("unknown rules option: 'komi' (komi is set separately here)")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RulesError(f"rules field 'komi' must be a number, got {value!r}")
            komi = to_float32(float(value)) if math.isfinite(float(value)) else float(value)
            if not (MIN_USER_KOMI <= komi <= MAX_USER_KOMI) or not komi_is_int_or_half_int(komi):
                raise RulesError(
                    f"komi {value!r} is not a half-integer or is too extreme (allowed -400..400)"
                )
            fields["komi"] = komi
            komi_specified = True
        else:
            raise RulesError(f"unknown rules option: {key!r}")
    return _apply_defaults(replace(_TROMP_TAYLOR, **fields), tax_specified, komi_specified)


def _parse_legacy(original: str, allow_komi: bool) -> Rules:
    s = _trim(original)
    if not s:
        raise RulesError("could not parse rules: empty string")

    def fail(why: str) -> RulesError:
        return RulesError(f"could not parse rules {original!r}: {why}")

    fields: dict[str, Any] = {}
    tax_specified = False
    komi_specified = False

    def eat(prefix: str) -> bool:
        nonlocal s
        matched = s.startswith(prefix)
        if matched:
            s = s[len(prefix) :]
        s = _trim(s)
        return matched

    def choose(table: dict[str, Any], what: str) -> Any:
        for name, value in table.items():
            if eat(name):
                return value
        raise fail(f"bad value after {what!r}")

    while s:
        if eat("komi"):
            if not allow_komi:
                raise fail("komi is not allowed here")
            end = 0
            while end < len(s) and not (s[end].isascii() and s[end].isalpha()) and s[end] not in _WHITESPACE:
                end += 1
            komi = _parse_cpp_float(s[:end])
            if komi is None or not math.isfinite(komi) or abs(komi) > 1e5:
                raise fail(f"bad komi {s[:end]!r}")
            fields["komi"] = komi
            komi_specified = True
            s = _trim(s[end:])
            continue
        if eat("ko"):
            fields["ko_rule"] = choose(_KO_NAMES, "ko")
            continue
        if eat("scoring") or eat("score"):
            fields["scoring_rule"] = choose(_SCORING_NAMES, "score")
            continue
        if eat("tax"):
            fields["tax_rule"] = choose(_TAX_NAMES, "tax")
            tax_specified = True
            continue
        if eat("sui"):
            fields["multi_stone_suicide_legal"] = choose({"1": True, "0": False}, "sui")
            continue
        if eat("button"):
            fields["has_button"] = choose({"1": True, "0": False}, "button")
            continue
        if eat("whb"):
            # "N-1" must be tried before "N".
            fields["white_handicap_bonus_rule"] = choose(
                {"0": WHB_ZERO, "N-1": WHB_N_MINUS_ONE, "N": WHB_N}, "whb"
            )
            continue
        if eat("fpok"):
            fields["friendly_pass_ok"] = choose({"1": True, "0": False}, "fpok")
            continue
        raise fail(f"unknown rules format near {s[:20]!r}")
    return _apply_defaults(replace(_TROMP_TAYLOR, **fields), tax_specified, komi_specified)


def parse_rules(text: Any, allow_komi: bool = True) -> Rules:
    """Rules from a preset name, a JSON object text, a decoded JSON object, or the compact legacy form.

    With ``allow_komi=False`` a komi inside the text is an error (KataGo's ``parseRulesWithoutKomi``, used by the
    GTP command ``kata-set-rules``). Raises :class:`RulesError` for anything KataGo would reject.
    """
    if isinstance(text, Rules):
        return text
    if isinstance(text, dict):
        return rules_from_json(text, allow_komi)
    if not isinstance(text, str):
        raise RulesError(f"rules must be a string or a JSON object, got {type(text).__name__}")
    lowered = _trim(text.lower())
    if lowered in PRESETS:
        return PRESETS[lowered]
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise RulesError(f"could not parse rules JSON {text!r}: {e.msg}") from None
        return rules_from_json(obj, allow_komi)
    return _parse_legacy(text, allow_komi)


def parse_rules_without_komi(text: Any, komi: float) -> Rules:
    """KataGo's ``parseRulesWithoutKomi``: a komi in the text is an error; the given komi is used."""
    return parse_rules(text, allow_komi=False).with_komi(komi)
