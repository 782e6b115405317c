"""rustc invocation, flags per profile, the content-hash cache and diagnostics.

Knows nothing of loading or LLMs.
"""

from symbiont._compile._builder import (
    DEFAULT_BUILD_TIMEOUT,
    PROFILES,
    Builder,
    BuildResult,
    default_cache_dir,
    library_suffix,
)
from symbiont._compile._diagnostics import (
    CANDIDATE_FILE,
    Diagnostic,
    Diagnostics,
    parse_rustc_json,
)
from symbiont._compile._limits import BuildLimits, build_environment
from symbiont._compile._toolchain import Toolchain, find_toolchain

__all__ = [
    "CANDIDATE_FILE",
    "DEFAULT_BUILD_TIMEOUT",
    "PROFILES",
    "BuildLimits",
    "BuildResult",
    "Builder",
    "Diagnostic",
    "Diagnostics",
    "Toolchain",
    "build_environment",
    "default_cache_dir",
    "find_toolchain",
    "library_suffix",
    "parse_rustc_json",
]
