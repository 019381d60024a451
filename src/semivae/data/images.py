"""Folders of images: ``folder/<class>/**`` and ``folder/unlabelled/**`` for training, a folder or
one file for new inputs; read into uint8 (N, C, H, W), grey or RGB. Raises :class:`UserError`
(one line: what is wrong, then the fix) for anything unreadable."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
UNLABELLED_DIRS = ("unlabelled", "unlabeled")
COLOUR_SHARE = 0.05  # images in colour from which a folder reads as RGB (fewer: strays, read as grey)


def list_images(folder: Path, nested: bool = False) -> list[Path]:
    """Image files directly in ``folder`` (``nested``: also in its sub-folders, at any depth, as
    torchvision's ImageFolder reads a class), sorted by path; hidden files and folders skipped."""
    found = []
    for root, dirs, names in os.walk(folder) if nested else [(folder, [], [p.name for p in folder.iterdir()])]:
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / n for n in names
                  if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTS and (Path(root) / n).is_file()]
    return sorted(found)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_image_folder(folder: Path, size: tuple[int, int] | None = None, channels: int | None = None,
                      mixed: dict | None = None) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Read ``folder/<class>/**`` (+ optional ``folder/unlabelled/**``) -> (x, y, classes, ids),
    the ids being the files' paths relative to ``folder``. Before any label exists, the images
    may all lie in ``unlabelled/`` or directly in ``folder`` (then it has no sub-folder): no classes.
    ``size`` (H, W) resizes every image to it; without it they must all share the first one's size.
    ``channels`` and ``mixed``: as ``read_images``."""
    loose, dirs = list_images(folder), _subdirs(folder)
    if loose and not dirs:  # no labels yet: every image unlabelled
        x = read_images(loose, channels, size=size, resize=size is not None, mixed=mixed)
        return x, np.full(len(loose), -1, dtype=np.int64), [], [f.name for f in loose]
    if loose:
        raise UserError(
            f"{loose[0]} lies directly in {folder}; move images into one sub-folder per class (or unlabelled/)"
        )
    class_dirs = [d for d in dirs if d.name.lower() not in UNLABELLED_DIRS]
    if not class_dirs and not any(list_images(d, nested=True) for d in dirs):
        raise UserError(f"{folder} holds no images; put them into one sub-folder per class (and unlabelled/)")
    files: list[Path] = []
    labels: list[int] = []
    for k, d in enumerate(class_dirs):
        imgs = list_images(d, nested=True)
        if not imgs:
            raise UserError(f"class folder {d} holds no {'/'.join(IMAGE_EXTS)} images; add images or remove it")
        files += imgs
        labels += [k] * len(imgs)
    for d in dirs:
        if d.name.lower() in UNLABELLED_DIRS:
            imgs = list_images(d, nested=True)
            files += imgs
            labels += [-1] * len(imgs)
    x = read_images(files, channels, size=size, resize=size is not None, mixed=mixed)
    ids = [f.relative_to(folder).as_posix() for f in files]
    return x, np.asarray(labels, dtype=np.int64), [d.name for d in class_dirs], ids


def labelled_twice(x: np.ndarray, y: np.ndarray, classes: list[str], ids: list[str]) -> dict | None:
    """One image in two class folders (a copy where a move was meant), or in a class folder and in
    unlabelled/ too: {"classes": n, "unlabelled": n, "first": "a and b"} (notes say so), or None."""
    first: dict[bytes, int] = {}
    found = {"classes": 0, "unlabelled": 0, "first": ""}
    for i, row in enumerate(x):
        j = first.setdefault(hashlib.sha1(row.tobytes()).digest(), i)
        if j == i or y[i] == y[j]:
            continue
        kind = "classes" if y[i] >= 0 and y[j] >= 0 else "unlabelled"
        found[kind] += 1
        found["first"] = found["first"] or f"{ids[j]} and {ids[i]}"
    return found if found["classes"] or found["unlabelled"] else None


def images_in_both(x: np.ndarray, x_test: np.ndarray, test_ids: list[str] | None) -> dict | None:
    """Test images that are also training images ({"n", "first"}), or None."""
    seen = {hashlib.sha1(row.tobytes()).digest() for row in x}
    shared = [i for i, row in enumerate(x_test) if hashlib.sha1(row.tobytes()).digest() in seen]
    return {"n": len(shared), "first": str(test_ids[shared[0]]) if test_ids else ""} if shared else None


def input_image_files(folder: Path) -> list[Path]:
    """Images to predict on: those directly in ``folder``, else those in its sub-folders."""
    files = list_images(folder)
    if not files:
        files = [f for d in _subdirs(folder) for f in list_images(d, nested=True)]
    if not files:
        raise UserError(f"{folder} holds no {'/'.join(IMAGE_EXTS)} images; add images to it or to sub-folders")
    return files


def read_images(
    files: list[Path], channels: int | None = None, size: tuple[int, int] | None = None, resize: bool = False,
    mixed: dict | None = None,
) -> np.ndarray:
    """Load images into uint8 (N, C, H, W).

    ``channels=None`` picks 3 (RGB) when at least ``COLOUR_SHARE`` of the images have colour, else 1
    (greyscale: a stray colour image is read by its luminance); ``mixed``, where given, is filled
    with {"n", "odd", "first", "channels"} when some images are of the other kind.
    ``size`` is the required (H, W); by default all images must match the first one. With
    ``resize`` every image is resized to ``size`` (bilinear, antialiased; the aspect not kept).
    """
    arrays: list[np.ndarray] = []
    first: Path | None = None
    for f in files:
        a = _read_image(f, size if resize else None)
        if size is None:
            size, first = a.shape[:2], f
        if a.shape[:2] != tuple(size):
            h, w = a.shape[:2]
            if first is None:  # new images for a trained model
                raise UserError(f"image {f} is {w}x{h} but the model expects {size[1]}x{size[0]} (width x height); "
                                f"resize it to {size[1]}x{size[0]}, or train with --image-size H,W (which resizes "
                                "training and new images alike)")
            raise UserError(f"image {f} is {w}x{h} but {first} is {size[1]}x{size[0]} (width x height); resize all "
                            "images to one size, e.g. with --image-size H,W when training")
        arrays.append(a)
    colour = [i for i, a in enumerate(arrays) if a.ndim == 3]
    if channels is None:
        channels = 3 if len(colour) >= COLOUR_SHARE * len(arrays) and colour else 1
    odd = colour if channels == 1 else [i for i in range(len(arrays)) if i not in set(colour)]
    if mixed is not None and odd:
        mixed.update(n=len(arrays), odd=len(odd), first=str(files[odd[0]]), channels=channels)
    out = np.empty((len(arrays), channels, *(size or (0, 0))), dtype=np.uint8)
    for i, a in enumerate(arrays):
        if channels == 3:
            out[i] = a.transpose(2, 0, 1) if a.ndim == 3 else a[None]
        else:
            out[i, 0] = a if a.ndim == 2 else _luminance(a)
    return out


def _read_image(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image as (H, W) uint8 if it is grey, else (H, W, 3) uint8; resized to ``size`` (H, W) if given."""
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I"):  # 16-bit grey (PNG, TIFF): 0..65535 scaled to 0..255, where convert clips
                im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257).round().clip(0, 255).astype(np.uint8))
            rgb = im.convert("RGB")
            rgb = np.asarray(rgb if size is None else rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path} ({err}); replace or remove that file") from None
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return np.ascontiguousarray(rgb[..., 0])
    return rgb


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma, as Pillow's ``convert('L')``."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 299 + g * 587 + b * 114 + 500) // 1000).astype(np.uint8)
