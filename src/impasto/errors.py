"""Errors a user can act on. The CLI prints their message on one line and exits 2."""


class ImpastoError(Exception):
    """Base class: anything raised as an ImpastoError is the user's to fix, not a bug."""


class ImageError(ImpastoError):
    """An input image cannot be read, or breaks a limit."""


class ImageTooLarge(ImageError):
    """An input image has more pixels than allowed (decompression-bomb guard)."""


class OutputError(ImpastoError):
    """An output path cannot be written."""


class WeightsError(ImpastoError):
    """VGG-19 weights are missing, unreadable or of the wrong shape."""


class OptionError(ImpastoError):
    """An option has a value impasto cannot use."""


class DivergedError(ImpastoError):
    """The optimization produced a non-finite loss."""


class ModelError(ImpastoError):
    """A model file is missing, corrupt, or not the kind of network asked for."""


class VideoError(ImpastoError):
    """A video cannot be read or written."""


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a video midway; the frames painted so far were written, playable."""

    def __init__(self, frames: int, output: str):
        super().__init__(f"interrupted after {frames} frames; wrote {output}")
        self.frames, self.output = frames, output
