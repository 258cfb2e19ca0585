import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.errors import ImageError, OutputError
from impasto.io.images import (
    carry_metadata,
    check_output_path,
    load_image,
    resize_longest,
    save_image,
    to_image,
    to_tensor,
)


def png_bytes(image: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_sources_agree(tmp_path):
    array = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    pil = Image.fromarray(array)
    path = tmp_path / "a.png"
    pil.save(path)
    for source in (path, str(path), path.read_bytes(), pil, array):
        assert np.array_equal(np.asarray(load_image(source)), array)


def test_exif_orientation_applied():
    image = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    loaded = load_image(png_bytes(image, "JPEG", exif=exif))
    assert loaded.size == (20, 40)


def test_alpha_composited_on_white():
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    loaded = load_image(rgba)
    assert loaded.mode == "RGB"
    assert loaded.getpixel((5, 5)) == (255, 255, 255)
    assert loaded.getpixel((0, 0)) == (255, 0, 0)
    assert load_image(Image.new("LA", (20, 20), (0, 0))).getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize(
    "image, pixel",
    [
        (Image.new("L", (20, 20), 100), (100, 100, 100)),
        (Image.new("P", (20, 20), 0), (0, 0, 0)),
        (Image.new("CMYK", (20, 20), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("I;16", (20, 20), 65535), (255, 255, 255)),
        (Image.new("I;16", (20, 20), 32896), (128, 128, 128)),
        (Image.new("F", (20, 20), 0.5), (128, 128, 128)),
        (Image.new("F", (20, 20), 200.0), (200, 200, 200)),
    ],
)
def test_modes_become_rgb(image, pixel):
    loaded = load_image(image)
    assert loaded.mode == "RGB" and loaded.getpixel((3, 3)) == pixel


def test_sixteen_bit_png_file(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((20, 20), 65535, dtype=np.uint16)).save(path)
    assert load_image(path).getpixel((0, 0)) == (255, 255, 255)


def test_errors_are_one_line(tmp_path):
    good = png_bytes(Image.new("RGB", (64, 64), "blue"), "JPEG")
    cases = {
        tmp_path / "missing.png": "no such file",
        tmp_path / "empty.png": "empty file",
        tmp_path / "text.png": "not an image",
        tmp_path / "trunc.jpg": "truncated",
        tmp_path: "is a directory",
    }
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, I am not a picture\n")
    big = png_bytes(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)),
        "JPEG",
    )
    (tmp_path / "trunc.jpg").write_bytes(big[: len(big) // 2])
    for path, message in cases.items():
        with pytest.raises(ImageError, match=message) as info:
            load_image(path)
        assert "\n" not in str(info.value)
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    assert load_image(good).size == (64, 64)


def test_pixel_limit_and_minimum_side():
    image = png_bytes(Image.new("RGB", (300, 200)))
    with pytest.raises(ImageError, match="over the limit of 50,000"):
        load_image(image, max_pixels=50_000)
    with pytest.raises(ImageError, match="too small"):
        load_image(Image.new("RGB", (100, 8)))
    assert load_image(image, max_pixels=None).size == (300, 200)


def test_bad_arrays():
    with pytest.raises(ImageError, match="uint8"):
        load_image(np.zeros((20, 20, 3), dtype=np.float32))
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((20, 20, 5), dtype=np.uint8))


def test_resize_longest_keeps_aspect():
    assert resize_longest(Image.new("RGB", (400, 200)), 100).size == (100, 50)
    assert resize_longest(Image.new("RGB", (200, 400)), 300).size == (150, 300)


def test_tensor_round_trip_is_exact():
    array = np.random.default_rng(1).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    t = to_tensor(Image.fromarray(array))
    assert t.shape == (1, 3, 17, 23) and t.dtype.is_floating_point
    assert np.array_equal(np.asarray(to_image(t)), array)


@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "webp", "tif", "tiff"])
def test_save_by_extension(tmp_path, ext):
    image = Image.new("RGB", (32, 24), (10, 200, 30))
    out = save_image(image, tmp_path / f"out.{ext}")
    again = Image.open(out)
    assert again.size == (32, 24)
    if ext in ("png", "tif", "tiff"):
        assert np.array_equal(np.asarray(again.convert("RGB")), np.asarray(image))
    assert sorted(os.listdir(tmp_path)) == [f"out.{ext}"]  # no temp file left


def test_save_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "out.png"
    out.write_bytes(b"previous good result")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(OutputError, match="cannot write \\(disk full\\)"):  # one line, no traceback
        save_image(Image.new("RGB", (20, 20)), out)
    assert out.read_bytes() == b"previous good result"
    assert os.listdir(tmp_path) == ["out.png"]


def test_output_checks(tmp_path):
    source = tmp_path / "in.png"
    Image.new("RGB", (20, 20)).save(source)
    with pytest.raises(OutputError, match="never overwrites"):
        check_output_path(source, inputs=(str(source),))
    with pytest.raises(OutputError, match="unknown image extension"):
        check_output_path(tmp_path / "out.gifx")
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root can write anywhere
            with pytest.raises(OutputError, match="not writable"):
                check_output_path(locked / "out.png")
    finally:
        locked.chmod(0o700)


def _tagged_photo(path, orientation: int = 6) -> bytes:
    """A JPEG with an sRGB ICC profile and EXIF (camera make, orientation)."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "impasto-test-camera"  # Make
    exif[0x0112] = orientation
    Image.new("RGB", (96, 64), (180, 90, 40)).save(path, icc_profile=icc, exif=exif.tobytes())
    return icc


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_results_keep_the_photos_icc_profile_and_exif(tmp_path, model_file, suffix):
    from impasto.methods.feedforward import FastStylizer

    photo = tmp_path / "photo.jpg"
    icc = _tagged_photo(photo)
    out = FastStylizer(model_file, "cpu").run(photo, 0, size=96).image
    assert out.size == (64, 96)  # orientation 6 applied once, on loading
    saved = save_image(out, tmp_path / f"out{suffix}")
    with Image.open(saved) as again:
        assert again.info.get("icc_profile") == icc
        exif = again.getexif()
        assert exif[0x010F] == "impasto-test-camera"
        assert exif.get(0x0112, 1) == 1  # not rotated a second time by viewers


def test_a_cmyk_profile_is_not_given_to_rgb_results():
    image = Image.new("RGB", (32, 32))
    source = Image.new("CMYK", (32, 32))
    source.info["icc_profile"] = b"\0" * 16 + b"CMYK" + b"\0" * 100
    assert "icc_profile" not in carry_metadata(image, source).info


def _png16_pixels(path) -> np.ndarray:
    """Decode a 16-bit RGB PNG written with filter 0 (what save_image16 writes)."""
    import struct
    import zlib

    data, pos, idat = path.read_bytes(), 8, b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (16, 2)
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * 6)
    assert not rows[:, 0].any()
    return rows[:, 1:].copy().view(">u2").reshape(h, w, 3)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_output_round_trips_exactly(tmp_path, suffix):
    from impasto.io.images import save_image16

    pytest.importorskip("tifffile") if suffix == ".tif" else None
    picture = torch.rand(1, 3, 24, 40)
    expected = (picture[0].permute(1, 2, 0).numpy() * 65535 + 0.5).astype(np.uint16)
    out = save_image16(picture, tmp_path / f"deep{suffix}")
    if suffix == ".png":
        found = _png16_pixels(out)
        assert Image.open(out).size == (40, 24)  # a PNG other readers open
    else:
        import tifffile

        found = tifffile.imread(out)
    assert found.dtype.itemsize == 2 and np.array_equal(found, expected)


def test_16_bit_png_keeps_the_profile_and_refuses_jpeg(tmp_path):
    from impasto.io.images import save_image16

    photo = tmp_path / "photo.jpg"
    icc = _tagged_photo(photo)
    out = save_image16(torch.rand(3, 16, 16), tmp_path / "deep.png", like=load_image(photo))
    with Image.open(out) as again:
        assert again.info.get("icc_profile") == icc
        assert again.getexif()[0x010F] == "impasto-test-camera"
    with pytest.raises(OutputError, match="PNG or TIFF"):
        save_image16(torch.rand(3, 16, 16), tmp_path / "deep.jpg")
