"""impasto: neural style transfer."""

__version__ = "0.1.0"

from .api import (  # noqa: E402
    ArbitraryStylizer,
    Dreamer,
    DreamOptions,
    Evaluator,
    FastStylizer,
    Options,
    Progress,
    Result,
    Stylizer,
    TrainOptions,
    arbitrary,
    dream,
    fast,
    stylize,
    train,
)
from .errors import ImpastoError  # noqa: E402

__all__ = ["ArbitraryStylizer", "DreamOptions", "Dreamer", "Evaluator", "FastStylizer",
           "ImpastoError", "Options", "Progress", "Result", "Stylizer", "TrainOptions",
           "arbitrary", "dream", "fast", "stylize", "train", "__version__"]  # fmt: skip
