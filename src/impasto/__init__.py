"""impasto: neural style transfer.

The names below load on first use, so `import impasto` (and `impasto --help`) does not
import torch until a method is asked for.
"""

from ._version import __version__
from .errors import ImpastoError

_API = (
    "ArbitraryStylizer",
    "Dreamer",
    "Evaluator",
    "FastStylizer",
    "Loader",
    "OnnxStylizer",
    "Progress",
    "Result",
    "Stylizer",
    "TrainOptions",
    "arbitrary",
    "dream",
    "fast",
    "load",
    "painter",
    "run",
    "stylize",
    "stylize_video",
    "train",
    "video",
)
_OPTIONS = (
    "ArbitraryOptions",
    "DreamOptions",
    "FastOptions",
    "FrameOptions",
    "Media",
    "OptimizeOptions",
    "Setup",
)

__all__ = [*_API, *_OPTIONS, "ImpastoError", "__version__"]


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _OPTIONS:
        from . import options

        return getattr(options, name)
    raise AttributeError(f"module 'impasto' has no attribute {name!r}")
