"""The OpenCL probe: which OpenCL platforms/devices KataGo's OpenCL build will see.

Contract: :func:`check_opencl` loads ``libOpenCL.so.1`` (or the given loader names) in a short-lived child
Python process (a broken driver cannot crash the caller; the probe has a timeout) and returns an
:class:`OpenCLInfo` listing the platforms and their devices. When there is no loader, no platform or no device
it raises :class:`~katadeploy.engine.katago.errors.OpenCLMissingError` naming the apt packages to install
(:data:`OPENCL_APT_PACKAGES`: on CPU-only Debian/Ubuntu machines, pocl's CPU driver and the ICD loader).
No shell is used.
"""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from katadeploy.engine.katago.errors import OpenCLMissingError

#: apt packages that provide OpenCL on a CPU-only Debian/Ubuntu machine.
OPENCL_APT_PACKAGES = ("pocl-opencl-icd", "ocl-icd-libopencl1")

OPENCL_PROBE_TIMEOUT_S = 60.0

_PROBE = r"""
import ctypes, json, sys
out = {"lib": None, "platforms": [], "error": None}
try:
    lib = ctypes.CDLL(sys.argv[1])
except OSError as e:
    out["error"] = "no-lib: " + str(e)
    print(json.dumps(out)); sys.exit(0)
out["lib"] = sys.argv[1]
u = ctypes.c_uint32()
err = lib.clGetPlatformIDs(0, None, ctypes.byref(u))
if err != 0 or u.value == 0:
    out["error"] = "no-platform: clGetPlatformIDs returned %d with %d platforms" % (err, u.value)
    print(json.dumps(out)); sys.exit(0)
ids = (ctypes.c_void_p * u.value)()
lib.clGetPlatformIDs(u.value, ids, None)
def info(fn, obj, key):
    size = ctypes.c_size_t()
    fn(ctypes.c_void_p(obj), ctypes.c_uint32(key), ctypes.c_size_t(0), None, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value or 1)
    fn(ctypes.c_void_p(obj), ctypes.c_uint32(key), size, buf, None)
    return buf.value.decode("utf-8", "replace").strip()
for p in ids:
    name = info(lib.clGetPlatformInfo, p, 0x0902)
    n = ctypes.c_uint32()
    devs = []
    if lib.clGetDeviceIDs(ctypes.c_void_p(p), ctypes.c_uint64(0xFFFFFFFF), 0, None, ctypes.byref(n)) == 0 and n.value:
        dids = (ctypes.c_void_p * n.value)()
        lib.clGetDeviceIDs(ctypes.c_void_p(p), ctypes.c_uint64(0xFFFFFFFF), n.value, dids, None)
        devs = [info(lib.clGetDeviceInfo, d, 0x102B) for d in dids]
    out["platforms"].append({"name": name, "devices": devs})
print(json.dumps(out))
"""


@dataclass(frozen=True)
class OpenCLInfo:
    """OpenCL platforms (name -> device names) visible to KataGo."""

    library: str
    platforms: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def devices(self) -> list[str]:
        return [d for _, devs in self.platforms for d in devs]

    def summary(self) -> str:
        return "; ".join(f"{name}: {', '.join(devs) or 'no devices'}" for name, devs in self.platforms)


def _opencl_fix() -> str:
    pk = " ".join(OPENCL_APT_PACKAGES)
    return (
        "KataGo from KaTrain is an OpenCL build. On a CPU-only Debian/Ubuntu machine install the pocl CPU driver: "
        f"`sudo apt-get install {pk}` (scripts/setup.sh does this); on a GPU machine install your vendor's "
        "OpenCL ICD (plus ocl-icd-libopencl1)"
    )


def check_opencl(
    timeout: float = OPENCL_PROBE_TIMEOUT_S, libraries: Sequence[str] | None = None
) -> OpenCLInfo:
    """Return the OpenCL platforms/devices, or raise :class:`OpenCLMissingError` naming what to install.

    ``libraries`` overrides the OpenCL loader names tried (default ``libOpenCL.so.1``, then what
    ``ctypes.util.find_library`` finds), e.g. to test the "not installed" path.
    """
    if libraries is None:
        lib = ctypes.util.find_library("OpenCL")
        candidates = ["libOpenCL.so.1"] + ([lib] if lib else [])
    else:
        candidates = list(libraries)
    result: dict[str, Any] = {"error": "no-lib: no OpenCL loader to try"}
    for cand in candidates:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _PROBE, cand],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OpenCLMissingError(
                f"probing OpenCL took over {timeout:g} s (a broken driver?). {_opencl_fix()}"
            ) from exc
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            result = {"error": f"probe crashed (exit {proc.returncode}): {proc.stderr.strip()[-200:]}"}
        if not str(result.get("error") or "").startswith("no-lib"):
            break
    err = result.get("error")
    if err:
        if str(err).startswith("no-lib"):
            raise OpenCLMissingError(f"libOpenCL.so.1 is not installed. {_opencl_fix()}")
        raise OpenCLMissingError(f"no OpenCL platform found ({err}). {_opencl_fix()}")
    platforms = tuple((p["name"], tuple(p["devices"])) for p in result["platforms"])
    info = OpenCLInfo(library=str(result["lib"]), platforms=platforms)
    if not info.devices:
        raise OpenCLMissingError(f"OpenCL platforms {info.summary()} have no devices. {_opencl_fix()}")
    return info
