"""argparse ``type=`` converters shared by the subcommands.

Contract: each function takes the argument's text and returns the parsed value, or raises
``argparse.ArgumentTypeError`` with a one-line message (argparse prints it as a usage error, exit 2).
"""

from __future__ import annotations

import argparse


def batch_list(text: str) -> list[int]:
    """Comma-separated positive batch sizes (``1,8,32``)."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated batch sizes such as 1,8,32, got {text!r}"
        ) from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be positive integers, got {text!r}")
    return out


def inflight_arg(text: str) -> str | int:
    """``auto`` or a positive integer."""
    if text == "auto":
        return text
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise argparse.ArgumentTypeError(f"--inflight takes a positive integer or auto, got {text!r}")
    return k


def inflight_list(text: str) -> list[str | int]:
    """Comma-separated :func:`inflight_arg` values, e.g. ``1,auto``."""
    out = [inflight_arg(x.strip()) for x in text.split(",") if x.strip()]
    if not out:
        raise argparse.ArgumentTypeError(f"--inflight takes values such as 1, 4 or 1,auto, got {text!r}")
    return out


def add_artifacts_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``ARTIFACT...`` of the commands that take artifacts (or ``torch``, the FP32 reference)."""
    parser.add_argument(
        "artifacts", nargs="+", metavar="ARTIFACT", help="artifact path (with its sidecar), or torch"
    )
