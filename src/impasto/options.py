"""Every option of the painting methods, declared once.

Each method has one dataclass of options. Each field is declared with `opt`: its default,
its help, its bounds and choices. The command line builds its flags from these classes,
and the Python API takes their fields as keywords, so a default is written here and
nowhere else. Options that several methods share are declared once (`SHARED`) and mean
the same thing wherever they appear: `--strength` is 0 for the photo and 1 for the full
style in every method.

Nothing here imports torch, so `impasto --help` and a mistyped flag answer at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from .errors import OptionError

SEED_HIGH = 2**32 - 1  # seeds are 0 ... this: what numpy and torch both take, however used
PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 where it is fast (devices.usable_precision)
COLOR_MODES = ("luminance", "histogram")
STYLE_LOSSES = ("gram", "moments", "w2")
OPTIMIZERS = ("lbfgs", "adam")
POOLINGS = ("max", "avg")
PADDINGS = ("zeros", "replicate")  # of VGG's first convolution; the rest pad with zeros
ONE_PASS_METHODS = ("wct", "adain")
BACKENDS = ("auto", "torch", "onnx")
EXPORT_FORMATS = ("onnx", "torchscript")
BIT_DEPTHS = (8, 16)
MAX_PIXELS = 100_000_000  # an input image's; more is refused unless the limit is raised
# Caffe's VGG applies ReLU in place, so the "conv1_1" blob of Gatys et al. is the
# rectified one: these are the paper's layers under their unambiguous names.
DEFAULT_CONTENT_LAYERS = {"relu4_2": 1.0}
DEFAULT_STYLE_LAYERS = {
    "relu1_1": 1.0,
    "relu2_1": 1.0,
    "relu3_1": 1.0,
    "relu4_1": 1.0,
    "relu5_1": 1.0,
}
# Optimization's style layers: relu5_1 left out, as its statistics are those of the
# painting's objects (faces, figures), which it paints into the picture (a portrait's eyes
# in a photo's sky), while relu1_1-relu4_1 carry its strokes, shapes and palette
# (docs/benchmarks.md). The metrics still measure all five.
OPTIMIZE_STYLE_LAYERS = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0}
# The style weight each style loss gets unless one is given: they differ in units.
DEFAULT_STYLE_WEIGHTS = {"gram": 100.0, "moments": 1e7, "w2": 3e6}


# Parsers: the text of a flag -> a value. Errors are ValueErrors, worded for a person.
def floats(text: str) -> list[float]:
    """`0.7,0.3` -> [0.7, 0.3]."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected numbers separated by commas: {text!r}") from None


def ints(text: str) -> list[int]:
    """`256,512` -> [256, 512]."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected integers separated by commas: {text!r}") from None


def layers(text: str) -> dict[str, float]:
    """`relu1_1:1,relu2_1:0.5,relu3_1` -> {name: weight}; a missing weight is 1."""
    found = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            found[name] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"bad layer weight in {item!r}") from None
    return found


def levels(text: str) -> list[int]:
    """`relu5_1,relu4_1` or `5,4` -> [5, 4]."""
    found = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        digits = item.removeprefix("relu").removesuffix("_1")
        if not digits.isdigit() or not 1 <= int(digits) <= 5:
            raise ValueError(f"levels are relu1_1 ... relu5_1, not {item!r}")
        found.append(int(digits))
    return found


def layer_spec(value: dict[str, float]) -> str:
    """{name: weight} -> `name:weight,...`, as `layers` reads it."""
    return ",".join(f"{name}:{weight:g}" for name, weight in value.items())


@dataclass(frozen=True)
class Spec:
    """How an option is read and checked: everything about it but its name and default."""

    help: str
    parse: Callable[[str], Any] | None = None  # text -> value; None: from the default's type
    choices: tuple = ()
    low: float | None = None  # numbers (and each number of a list) must lie in [low, high]
    high: float | None = None
    above: float | None = None  # ... and be strictly above this
    metavar: str | None = None
    aliases: tuple[str, ...] = ()  # other flags that set it: ("--alpha",)
    const: Any = None  # a flag given without a value means this (--preserve-color)
    negate: str | None = None  # a true default turned off by this flag: "--no-warm-start"
    flag: str | None = None  # the flag, where it is not --name-with-dashes
    repeat: bool = False  # given once per value (--style a.jpg --style b.jpg)
    required: bool = False

    def check(self, name: str, value: Any) -> None:
        """Raise an OptionError naming `name` if `value` is out of bounds or choices."""
        if value is None:
            return
        if self.choices and not isinstance(value, (list, tuple, dict)):
            if value not in self.choices:
                raise OptionError(
                    f"{name} must be one of {', '.join(map(str, self.choices))}, not {value!r}"
                )
            return
        values = value.values() if isinstance(value, dict) else value
        numbers = values if isinstance(values, (list, tuple, type({}.values()))) else [values]
        for number in numbers:
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                continue
            if not math.isfinite(number):
                raise OptionError(f"{name} must be a finite number, not {number}")
            if self.low is not None and number < self.low:
                raise OptionError(
                    f"{name} must be at least {_n(self.low)}{_range(self)}, not {_n(number)}"
                )
            if self.high is not None and number > self.high:
                raise OptionError(
                    f"{name} must be at most {_n(self.high)}{_range(self)}, not {_n(number)}"
                )
            if self.above is not None and number <= self.above:
                raise OptionError(f"{name} must be above {_n(self.above)}, not {_n(number)}")


def _n(number: float) -> str:
    """A bound or value as a message shows it: an integer in full, up to 12 digits."""
    if isinstance(number, int) and abs(number) < 10**12:
        return str(number)
    return f"{number:g}"


def _range(spec: Spec) -> str:
    if spec.low is not None and spec.high is not None:
        return f" (it lies between {_n(spec.low)} and {_n(spec.high)})"
    return ""


def opt(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field that is a user's option: its default and its `Spec`."""
    meta = {"spec": Spec(help, **spec)}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def spec_of(f: Any) -> Spec | None:
    """The `Spec` of a dataclass field, or None for a field that is no user option."""
    return f.metadata.get("spec")


def default_of(f: Any) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def check(options: Any) -> None:
    """Check every field of an options dataclass against its declaration: a number where
    the default is one, in its bounds, among its choices."""
    for f in fields(options):
        if (spec := spec_of(f)) is None:
            continue
        value, default = getattr(options, f.name), default_of(f)
        numeric = (isinstance(default, (int, float)) and not isinstance(default, bool)) or (
            default is None and spec.parse in (int, float)
        )
        wrong = isinstance(value, bool) or not isinstance(value, (int, float, list, tuple))
        if numeric and value is not None and wrong:
            raise OptionError(f"{f.name} must be a number, not {value!r}")
        spec.check(f.name, value)


def update(options: Any, changes: dict[str, Any], method: str) -> Any:
    """`options` with `changes` (keywords of its fields, or their aliases: alpha for
    strength) set, all checked; an unknown keyword is an OptionError."""
    known = {f.name for f in fields(options)}
    aliases = {
        a.lstrip("-").replace("-", "_"): f.name
        for f in fields(options)
        if (spec := spec_of(f)) is not None
        for a in spec.aliases
    }
    for key, value in changes.items():
        name = aliases.get(key, key)
        if name not in known:
            raise OptionError(
                f"unknown option {key!r} for {method}; its options are: {', '.join(sorted(known))}"
            )
        setattr(options, name, value)
    check(options)
    return options


def _shared(default: Any, help: str, **spec: Any) -> Callable[[], Any]:
    """An option several methods take: declared once here, a field in each of them."""
    return lambda: opt(default, help, **spec)


SIZE = _shared(512, "longest side of the output, px", low=16, metavar="PX")
STRENGTH = _shared(
    1.0,
    "0: the photo, 1: the full style; in between, the two blended",
    low=0.0,
    high=1.0,
    aliases=("--alpha",),
)
PRESERVE_COLOR = _shared(
    None,
    "keep the photo's colours: luminance (style on brightness "
    "alone) or histogram (the style recoloured to the photo's colours); "
    "given alone: luminance",
    choices=COLOR_MODES,
    const="luminance",
)
PRECISION = _shared(
    "auto",
    "bf16: bfloat16 arithmetic, faster with the same pictures on GPUs and "
    "CPUs with AVX-512 or AMX; auto: bf16 where it is fast, else fp32",
    choices=PRECISIONS,
)
STYLE_SCALE = _shared(
    1.0,
    "the painting's size relative to the output: below 1 gives larger strokes",
    above=0.0,
    high=8.0,
)
STYLE_WEIGHTS = _shared(
    None,
    "blend weights of the style images (default: equal)",
    parse=floats,
    low=0.0,
    metavar="W,W,...",
)
SEED = _shared(None, "seed of the random numbers, so runs repeat", parse=int, low=0, high=SEED_HIGH)


@dataclass
class PaintOptions:
    """The options every painting method takes."""

    size: int = SIZE()
    strength: float = STRENGTH()
    preserve_color: str | None = PRESERVE_COLOR()
    precision: str = PRECISION()


@dataclass
class OptimizeOptions(PaintOptions):
    """Style transfer by optimization. The defaults (the "balanced" preset) were chosen by
    measurement on the project's photo-painting pairs (docs/benchmarks.md): the
    Wasserstein-2 style loss, Adam with a moving average of its iterates, warm-started
    across a ladder of scales sqrt(2) apart from 128 px, replicate padding."""

    iterations: int | Sequence[int] = opt(
        100,
        "iterations per scale: one number for all, or one per scale",
        parse=ints,
        low=0,
        metavar="N[,N...]",
    )
    content_target: float = opt(
        0.25,
        "the content distance (relu4_2, as `impasto evaluate` measures it) the balance aims "
        "at: the coarsest scale is painted again with alpha moved until it lands near; 0: "
        "off, alpha as given (off, unless given, with --content-weight or --style-weight)",
        low=0.0,
        high=4.0,
        metavar="D",
    )
    content_weight: float = opt(
        5.0, "content weight, alpha (with a content target: where its search starts)", low=0.0
    )
    style_weight: float | None = opt(
        None,
        "style weight, beta (default per style loss: "
        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_STYLE_WEIGHTS.items())
        + ")",
        parse=float,
        low=0.0,
    )
    tv_weight: float = opt(300.0, "total-variation weight", low=0.0)
    style_loss: str = opt(
        "w2",
        "gram: Gatys; moments: mean and covariance; w2: "
        "Wasserstein-2 between the features' Gaussians",
        choices=STYLE_LOSSES,
    )
    content_layers: dict[str, float] = opt(
        DEFAULT_CONTENT_LAYERS,
        "content layers and their weights",
        parse=layers,
        low=0.0,
        metavar="L[:W],...",
    )
    style_layers: dict[str, float] = opt(
        OPTIMIZE_STYLE_LAYERS,
        "style layers and their weights",
        parse=layers,
        low=0.0,
        metavar="L[:W],...",
    )
    style_weights: Sequence[float] | None = STYLE_WEIGHTS()
    style_scale: float = STYLE_SCALE()
    init: Any = opt("content", "start from: content, noise, or an image's path")
    optimizer: str = opt("adam", "Adam, or L-BFGS (Gatys et al.)", choices=OPTIMIZERS)
    lr: float | None = opt(
        None,
        "Adam's learning rate (0.02) / L-BFGS's first step (0.01)",
        parse=float,
        above=0.0,
        high=1e3,
    )
    history: int = opt(
        20,
        "L-BFGS curvature pairs, two image-sized buffers each; 100 "
        "reaches a given loss in fewer iterations",
        low=1,
        high=10_000,
    )
    average: float = opt(
        0.95,
        "show, save and carry to the next scale a moving average of "
        "the iterates with this decay; 0: off",
        low=0.0,
        high=0.999,
    )
    warm_start: bool = opt(True, "carry Adam's moments to the next scale", negate="--no-warm-start")
    scales: Sequence[int] | None = opt(
        None,
        "coarse-to-fine sizes (default: divide --size by --scale-step down to --min-scale)",
        parse=ints,
        low=16,
        metavar="S,S,...",
    )
    scale_step: float = opt(2**0.5, "ratio between scales", above=1.0, high=16.0)
    min_scale: int = opt(128, "smallest scale, px", low=16)
    pooling: str = opt("max", "VGG's pooling (avg is scaled to max's magnitude)", choices=POOLINGS)
    padding: str = opt(
        "replicate", "padding of VGG's first layer (replicate: no dark frame)", choices=PADDINGS
    )
    seed: int | None = SEED()
    save_every: int = opt(0, "write a snapshot every N iterations", low=0, metavar="N")
    snapshots: Any = opt(None, "folder for snapshots", parse=str, metavar="DIR")
    tile: int | None = opt(
        None,
        "optimize scales larger than this in tiles of this size",
        parse=int,
        low=64,
        metavar="PX",
    )
    max_memory: int | None = opt(
        None,
        "scales that would need more are optimized in tiles "
        "(default: half the memory free at the start)",
        parse=int,
        low=1024,
        metavar="MB",
    )


# Named sets of optimization options. "balanced" is OptimizeOptions' own defaults; the
# others change only what they name, and options given with a preset override it.
PRESETS: dict[str, dict] = {
    "balanced": {},
    "more-style": {"content_target": 0.4},
    "more-photo": {"content_target": 0.15},
    # Gatys et al. as the core benchmark measures it: Gram loss, L-BFGS, octave scales.
    "classic": {
        "content_target": 0.0,
        "style_loss": "gram",
        "optimizer": "lbfgs",
        "average": 0.0,
        "scale_step": 2.0,
        "min_scale": 256,
        "pooling": "max",
        "padding": "zeros",
        "content_weight": 5.0,
        "tv_weight": 300.0,
        "iterations": 300,
        "style_layers": dict(DEFAULT_STYLE_LAYERS),
    },
}


@dataclass
class FastOptions(PaintOptions):
    """A trained feed-forward network: the options every painting method takes (its
    style is chosen among the network's, by name, when it runs)."""

    tile: int = opt(
        1536,
        "bigger pictures run in overlapping tiles of this size",
        low=256,
        high=65536,
        metavar="PX",
    )
    batch: int = opt(1, "images per forward pass (images of one size go together)", low=1, high=256)


@dataclass
class ArbitraryOptions(PaintOptions):
    """Any painting in one pass (universal style transfer)."""

    style_weights: Sequence[float] | None = STYLE_WEIGHTS()
    style_scale: float = STYLE_SCALE()
    method: str | None = opt(
        None,
        "wct: whitening and colouring (Li et al.); adain: means and spreads only (Huang & "
        "Belongie) (default: the one the decoders were trained for)",
        choices=ONE_PASS_METHODS,
        parse=str,
    )
    levels: Sequence[int] | None = opt(
        None,
        "levels, coarse to fine (default: the decoders' own from relu4_1 down: relu4_1 alone for "
        "decoders that paint, such as painter; relu4_1 to relu1_1 for compact and decoders)",
        parse=levels,
        metavar="relu4_1,...",
    )


@dataclass
class DreamOptions:
    """DeepDream: amplify what the chosen layers see."""

    size: int = SIZE()
    layers: dict[str, float] = opt(
        {"relu4_2": 1.0},
        "layers to amplify and their weights",
        parse=layers,
        low=0.0,
        metavar="L[:W],...",
    )
    octaves: int = opt(4, "scales, each octave-scale times the last", low=1, high=12)
    octave_scale: float = opt(1.4, "ratio between octaves", above=1.0, high=4.0)
    iterations: int = opt(10, "gradient steps per octave", low=0, high=100_000)
    step_size: float = opt(
        0.01, "step, in [0, 1] pixel units, after normalising the gradient", above=0.0, high=1.0
    )
    jitter: int = opt(32, "random roll before each step, px", low=0, high=4096)
    guide: Any = opt(None, "dream of what this image contains", metavar="IMAGE")
    seed: int | None = SEED()
    save_every: int = opt(0, "write a snapshot every N steps", low=0, metavar="N")
    snapshots: Any = opt(None, "folder for snapshots", parse=str, metavar="DIR")


@dataclass
class Setup:
    """What a method loads, and where: set when its networks load, not per picture."""

    device: str = opt("auto", "where to run: auto, cpu, cuda, cuda:N or mps")
    weights: str | None = opt(
        None,
        "VGG-19 weights (.pth, .safetensors, .bin; default: the built-in ones)",
        metavar="PATH",
    )
    model: str = opt(
        "styles", "a trained network: a built-in name (impasto models) or a model file"
    )
    decoders: str = opt(
        "painter",
        "the one-pass network: built-in (painter: trained to paint; compact: decoders that "
        "reconstruct, for photographic looks; decoders: VGG-19's, slower) or a file",
    )
    backend: str = opt(
        "auto",
        "the network's engine: torch (CPU or GPU, bf16, big pictures in tiles) or onnx "
        "(onnxruntime on the CPU, no torch to load: quick to start); auto: for fast, onnx on "
        "a machine without a CUDA GPU, where onnxruntime is installed, but torch for videos "
        "and the webcam on a CPU with bf16 kernels (its bf16 copy paints frames faster); for "
        "arbitrary, onnx for one picture on such a machine with a network trained to paint, "
        "torch for more (it keeps the painting's statistics from one to the next)",
        choices=BACKENDS,
    )


# The Setup fields each method loads with.
SETUP: dict[str, tuple[str, ...]] = {
    "optimize": ("device", "weights"),
    "fast": ("device", "model", "backend"),
    "arbitrary": ("device", "decoders", "weights", "backend"),
    "dream": ("device", "weights"),
}


@dataclass
class Output:
    """How a command reads its inputs and writes and reports its pictures."""

    bit_depth: int = opt(8, "16: 16 bits per channel, for print (PNG or TIFF)", choices=BIT_DEPTHS)
    max_pixels: int = opt(MAX_PIXELS, "refuse larger input images", low=1, metavar="N")
    json: bool = opt(False, "machine-readable output: a JSON line for each result")
    quiet: bool = opt(False, "no progress and no report")


@dataclass
class Media:
    """Moving pictures and sheets from a trained network."""

    consistency: str = opt(
        "flow",
        "keep strokes steady between frames: flow carries the last frame along the motion "
        "(and the network's features, before it paints the frame); off paints each frame "
        "alone",
        choices=("off", "flow"),
    )
    consistency_strength: float = opt(
        0.93,
        "how much of the last frame, carried along the motion, a new frame keeps",
        low=0.0,
        high=0.99,
    )
    smooth: float = opt(
        0.0, "also damp flicker where the picture is still (0: off)", low=0.0, high=0.99
    )
    camera: int = opt(0, "camera index", low=0, high=63)
    columns: int = opt(4, "pictures per row", low=1, high=64)


@dataclass
class FrameOptions:
    """A video by optimization (stylize-video): how the frames after the first are painted."""

    temporal_weight: float = opt(
        2000.0,
        "how strongly a frame keeps the last one's painting wherever the motion is known "
        "(Ruder et al.'s temporal loss; 0: each frame alone)",
        low=0.0,
    )
    frame_iterations: int = opt(
        60,
        "iterations for each frame after the first, from the last painting carried along "
        "the motion (the first frame gets the whole ladder of scales)",
        low=1,
        high=100_000,
    )
    frames: Any = opt(
        None,
        "folder of the finished frames, where a stopped run resumes (default: OUTPUT.frames "
        "beside the output; removed when the video is complete)",
        parse=str,
        metavar="DIR",
    )


@dataclass
class Inspect:
    """Looking at networks and pictures: evaluate, features, export."""

    size: int = SIZE()
    layer: str = opt("relu3_1", "the layer whose feature maps are drawn")
    top: int = opt(16, "how many channels", low=1, high=512)
    gram: bool = opt(False, "draw the Gram matrix instead")
    format: str = opt("onnx", "what to export to", choices=EXPORT_FORMATS)


METHODS: dict[str, type] = {
    "optimize": OptimizeOptions,
    "fast": FastOptions,
    "arbitrary": ArbitraryOptions,
    "dream": DreamOptions,
}


def shared_by(name: str) -> list[str]:
    """The methods that take option `name`."""
    return [m for m, cls in METHODS.items() if any(f.name == name for f in fields(cls))]
