"""impasto: neural style transfer."""

__version__ = "0.1.0"

from .api import Options, Progress, Result, Stylizer, stylize  # noqa: E402
from .errors import ImpastoError  # noqa: E402

__all__ = ["ImpastoError", "Options", "Progress", "Result", "Stylizer", "stylize", "__version__"]
