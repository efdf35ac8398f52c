"""Facts about the CPU this process runs on, shared by the runtimes, the exporters and the reports.

Contract:
- :func:`cpu_features` is the flag set of ``/proc/cpuinfo`` (empty where it cannot be read);
- :func:`cpu_name` is the CPU's model name (``platform.processor()`` or the architecture where ``/proc`` is missing);
- :func:`int8_dot_saturates` is True on an x86-64 CPU without VNNI or AMX (AVX2, or AVX-512 without VNNI). There
  onnxruntime (MLAS) and oneDNN multiply u8 activations by s8 weights with ``vpmaddubsw``, which adds two
  products in a *saturating int16*: ``255 * 127 * 2 = 64770 > 32767``. Full 8-bit weight codes then lose large
  sums (measured on an AMD EPYC Zen 3: 43% error on a three-layer QDQ graph that runs exactly on VNNI CPUs).
  VNNI (``vpdpbusd``) and AMX accumulate in int32 and never saturate, nor do ARM's dot products. An x86 CPU whose
  flags cannot be read counts as saturating (the safe answer).
"""

from __future__ import annotations

import platform

#: the x86 flags of instructions that accumulate u8 x s8 products in int32 (no int16 saturation)
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
_X86 = ("x86_64", "amd64", "i686", "x86")


def _cpuinfo(*keys: str) -> str | None:
    """The value of the first ``/proc/cpuinfo`` line starting with one of ``keys`` (None where unreadable)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(keys):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_features() -> set[str]:
    """CPU flags from ``/proc/cpuinfo`` (empty where it is not readable)."""
    return set((_cpuinfo("flags", "Features") or "").split())


def cpu_name() -> str:
    """The CPU's model name."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def is_x86() -> bool:
    return platform.machine().lower() in _X86


def has_vnni(flags: set[str] | None = None) -> bool:
    """Whether the CPU has an int32-accumulating u8 x s8 dot product (VNNI or AMX)."""
    flags = cpu_features() if flags is None else flags
    return bool(flags.intersection(VNNI_FLAGS))


def int8_dot_saturates(flags: set[str] | None = None) -> bool:
    """True on x86-64 without VNNI/AMX (see the module contract)."""
    return is_x86() and not has_vnni(flags)


def int8_isa(flags: set[str] | None = None) -> str:
    """A short name of the CPU's int8 dot-product path, for reports: ``amx``, ``vnni``, ``avx2 (saturating)``, ..."""
    flags = cpu_features() if flags is None else flags
    if not is_x86():
        return "arm dotprod" if {"asimddp"} & flags else platform.machine().lower()
    if "amx_int8" in flags:
        return "amx"
    if has_vnni(flags):
        return "vnni"
    return ("avx512" if "avx512bw" in flags else "avx2" if "avx2" in flags else "x86") + " (saturating)"
