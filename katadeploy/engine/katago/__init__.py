"""The real KataGo binary: install, locate, check OpenCL, tune, write minimal configs, GTP oracle.

Contract: this package re-exports the public names of its modules, so ``from katadeploy.engine import katago;
katago.install(); katago.locate(...); katago.write_analysis_config(...)`` works. The modules, one concern each:

* :mod:`~katadeploy.engine.katago.installer` — wheel download/verify/extract, AppImage unpacking, cache paths,
  :func:`install`, :func:`locate`, :class:`KataGoBinary`;
* :mod:`~katadeploy.engine.katago.opencl` — the OpenCL/pocl probe :func:`check_opencl`;
* :mod:`~katadeploy.engine.katago.tuning` — :func:`ensure_tuning` and the tune-file salvage for tuner crashes;
* :mod:`~katadeploy.engine.katago.configs` — config templates, :func:`render_config`, :func:`write_analysis_config`,
  :func:`write_gtp_config`;
* :mod:`~katadeploy.engine.katago.build` — ``build`` (re-exported as :func:`build_katago`; KataGo from source
  with cmake: Eigen, OpenCL, ONNX),
  :func:`built`, :func:`launcher` (a path that runs as it is);
* :mod:`~katadeploy.engine.katago.gtp` — the ``kata-raw-nn`` GTP oracle client (not imported here; import it
  as ``katadeploy.engine.katago.gtp``);
* :mod:`~katadeploy.engine.katago.errors` — :class:`KataGoError` and its subclasses.

Nothing here uses a shell; every child process has a timeout.
"""

from katadeploy.cache import CACHE_ENV
from katadeploy.engine.katago.build import (
    BUILD_BACKENDS,
    BuildRequirementError,
    KataGoBuild,
    built,
    launcher,
    missing_requirements,
)
from katadeploy.engine.katago.build import build as build_katago  # the submodule keeps the name ``build``
from katadeploy.engine.katago.configs import (
    format_config_value,
    render_config,
    write_analysis_config,
    write_gtp_config,
)
from katadeploy.engine.katago.errors import KataGoError, KataGoNotFoundError, OpenCLMissingError
from katadeploy.engine.katago.installer import (
    BINARY_SHA256,
    EXTRACT_TIMEOUT_S,
    KATAGO_ENV,
    KATAGO_VERSION,
    KATRAIN_VERSION,
    LOCK_TIMEOUT_S,
    PIP_TIMEOUT_S,
    VERSION_TIMEOUT_S,
    WHEEL_MEMBER,
    WHEEL_NAME,
    WHEEL_SHA256,
    KataGoBinary,
    install,
    install_dir,
    installed,
    katago_home,
    locate,
    wheel_dir,
)
from katadeploy.engine.katago.opencl import (
    OPENCL_APT_PACKAGES,
    OPENCL_PROBE_TIMEOUT_S,
    OpenCLInfo,
    check_opencl,
)
from katadeploy.engine.katago.tuning import TUNE_TIMEOUT_S, TunerLog, ensure_tuning, write_salvaged_tuning
from katadeploy.errors import KatadeployError

__all__ = [
    "BINARY_SHA256",
    "BUILD_BACKENDS",
    "BuildRequirementError",
    "KataGoBuild",
    "build_katago",
    "built",
    "launcher",
    "missing_requirements",
    "CACHE_ENV",
    "EXTRACT_TIMEOUT_S",
    "KATAGO_ENV",
    "KATAGO_VERSION",
    "KATRAIN_VERSION",
    "LOCK_TIMEOUT_S",
    "OPENCL_APT_PACKAGES",
    "OPENCL_PROBE_TIMEOUT_S",
    "PIP_TIMEOUT_S",
    "TUNE_TIMEOUT_S",
    "VERSION_TIMEOUT_S",
    "WHEEL_MEMBER",
    "WHEEL_NAME",
    "WHEEL_SHA256",
    "KataGoBinary",
    "KataGoError",
    "KataGoNotFoundError",
    "KatadeployError",
    "OpenCLInfo",
    "OpenCLMissingError",
    "TunerLog",
    "check_opencl",
    "ensure_tuning",
    "format_config_value",
    "install",
    "install_dir",
    "installed",
    "katago_home",
    "locate",
    "render_config",
    "wheel_dir",
    "write_analysis_config",
    "write_gtp_config",
    "write_salvaged_tuning",
]
