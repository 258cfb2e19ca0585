"""What a transformer model file records to rebuild its network (no torch needed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ModelError

# Bounds on what a model file may ask for: far past any trained network, short of one that
# would take minutes to build and more memory than a machine has.
MAX_WIDTH, MAX_BLOCKS, MAX_STYLES = 256, 64, 4096


@dataclass(frozen=True)
class Architecture:
    """What a model file must record to rebuild its network."""

    styles: tuple[str, ...] = ("style",)
    width: int = 8  # channels of the first layer; doubled by each of the 2 downsamplings
    blocks: int = 5  # residual blocks at 1/4 resolution

    def to_dict(self) -> dict:
        return {**asdict(self), "styles": list(self.styles), "kind": "transformer"}

    @classmethod
    def from_dict(cls, d: dict) -> Architecture:
        try:
            arch = cls(styles=tuple(d["styles"]), width=int(d["width"]), blocks=int(d["blocks"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"model metadata does not describe a transformer network ({e})") from e
        names_ok = all(isinstance(n, str) and n for n in arch.styles)
        if not (0 < len(arch.styles) <= MAX_STYLES and names_ok):
            raise ModelError("model metadata names no styles, or names that are not text")
        if not (1 <= arch.width <= MAX_WIDTH and 0 <= arch.blocks <= MAX_BLOCKS):
            raise ModelError(
                f"model metadata has an impossible architecture (width {arch.width}, "
                f"blocks {arch.blocks}; at most {MAX_WIDTH} and {MAX_BLOCKS})"
            )
        return arch
