"""Pictures made of pictures: labelled contact sheets, and loss curves."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _font(size: int = 14) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def contact_sheet(
    cells: Sequence[Sequence[Image.Image]],
    column_labels: Sequence[str] = (),
    row_labels: Sequence[str] = (),
    cell: int = 256,
) -> Image.Image:
    """A grid of images, each fitted into a `cell`-px square, with labels above and left."""
    font = _font()
    top = 24 if column_labels else 0
    left = max((int(font.getlength(t)) for t in row_labels), default=0) + 12 if row_labels else 0
    n_cols = max(len(row) for row in cells)
    sheet = Image.new("RGB", (left + n_cols * cell, top + len(cells) * cell), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(column_labels):
        text = _shorten(label, font, cell - 8)
        draw.text((left + c * cell + cell / 2, top / 2), text, fill="black", font=font, anchor="mm")
    for r, row in enumerate(cells):
        if r < len(row_labels):
            draw.text(
                (6, top + r * cell + cell / 2), row_labels[r], fill="black", font=font, anchor="lm"
            )
        for c, image in enumerate(row):
            thumb = image.copy()
            thumb.thumbnail((cell - 4, cell - 4), Image.Resampling.LANCZOS)
            x = left + c * cell + (cell - thumb.width) // 2
            y = top + r * cell + (cell - thumb.height) // 2
            sheet.paste(thumb, (x, y))
    return sheet


def labelled_grid(
    tiles: Sequence[Image.Image], labels: Sequence[str], columns: int, cell: int = 256
) -> Image.Image:
    """Tiles in rows of `columns`, each with its own label above it."""
    sheets = [
        contact_sheet([tiles[i : i + columns]], labels[i : i + columns], cell=cell)
        for i in range(0, len(tiles), columns)
    ]
    out = Image.new("RGB", (max(s.width for s in sheets), sum(s.height for s in sheets)), "white")
    y = 0
    for sheet in sheets:
        out.paste(sheet, (0, y))
        y += sheet.height
    return out


def justified(pictures: Sequence[Image.Image], width: int, columns: int = 2) -> Image.Image:
    """Pictures in rows of `columns`, each row scaled to fill `width` exactly at one
    height (pictures of any shape, no blank margins), the rows stacked."""
    rows = []
    for i in range(0, len(pictures), columns):
        row = pictures[i : i + columns]
        height = round(width / sum(p.width / p.height for p in row))
        widths = [round(p.width * height / p.height) for p in row]
        widths[-1] = width - sum(widths[:-1])  # rounding: the last absorbs the remainder
        rows.append(
            [
                p.resize((w, height), Image.Resampling.LANCZOS)
                for p, w in zip(row, widths, strict=True)
            ]
        )
    sheet = Image.new("RGB", (width, sum(r[0].height for r in rows)), "white")
    y = 0
    for row in rows:
        x = 0
        for picture in row:
            sheet.paste(picture, (x, y))
            x += picture.width
        y += row[0].height
    return sheet


def _shorten(text: str, font: ImageFont.ImageFont, width: int) -> str:
    while len(text) > 3 and font.getlength(text) > width:
        text = text[:-4] + "…"
    return text


def plot_curves(
    curves: dict[str, Sequence[tuple[float, float]]],
    title: str = "",
    size: tuple[int, int] = (800, 480),
) -> Image.Image:
    """Line chart of named (x, y) series with a log-scale y axis (losses span decades)."""
    width, height = size
    margin = (70, 20, 30, 40)  # left, right, top, bottom
    font = _font(12)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    points = [(x, y) for series in curves.values() for x, y in series if y > 0]
    if not points:
        draw.text((width / 2, height / 2), "no data", fill="black", font=font, anchor="mm")
        return image
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0 = math.floor(math.log10(min(p[1] for p in points)))
    y1 = math.ceil(math.log10(max(p[1] for p in points)))
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    pw, ph = width - margin[0] - margin[1], height - margin[2] - margin[3]

    def at(x: float, y: float) -> tuple[float, float]:
        fx = (x - x0) / (x1 - x0)
        fy = (math.log10(y) - y0) / (y1 - y0)
        return margin[0] + fx * pw, margin[2] + (1 - fy) * ph

    draw.rectangle([margin[0], margin[2], width - margin[1], height - margin[3]], outline="black")
    for decade in range(y0, y1 + 1):
        _, y = at(x0, 10.0**decade)
        draw.line([margin[0], y, width - margin[1], y], fill="#dddddd")
        draw.text((margin[0] - 6, y), f"1e{decade}", fill="black", font=font, anchor="rm")
    for i in range(5):
        x = x0 + (x1 - x0) * i / 4
        px, _ = at(x, 10.0**y0)
        draw.text(
            (px, height - margin[3] + 14),
            f"{x:.0f}" if x1 - x0 >= 4 else f"{x:.2g}",
            fill="black",
            font=font,
            anchor="mm",
        )
    for i, (name, series) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        line = [at(x, y) for x, y in series if y > 0]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        draw.text((margin[0] + 10, margin[2] + 8 + 16 * i), name, fill=colour, font=font)
    if title:
        draw.text((width / 2, margin[2] / 2), title, fill="black", font=font, anchor="mm")
    return image


# Anchors of matplotlib's viridis: perceptually even, readable in grey, colour-blind safe.
_VIRIDIS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float32
)


def colormap(values: np.ndarray) -> Image.Image:
    """A 2-D array in [0, 1] -> an RGB image in the viridis colours."""
    v = np.clip(np.nan_to_num(values.astype(np.float32)), 0, 1) * (len(_VIRIDIS) - 1)
    low = np.floor(v).astype(int).clip(0, len(_VIRIDIS) - 2)
    frac = (v - low)[..., None]
    rgb = _VIRIDIS[low] * (1 - frac) + _VIRIDIS[low + 1] * frac
    return Image.fromarray(rgb.round().astype(np.uint8))
