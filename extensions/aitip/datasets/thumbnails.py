"""Small previews of an image-folder version: a few thumbnails per class for people looking at the data,
and one image of an annotation item for the person labelling it. Images are read from the registry's
cache and shrunk in memory (never written back); a file Pillow cannot read is counted, not fatal."""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from pathlib import Path

from pydantic import Field

from ..schema import RequestModel, ResponseModel

# An image whose pixel count passes this is refused before it is decoded (a decompression bomb).
MAX_PIXELS = 64_000_000


class ThumbnailQuery(RequestModel):
    per_class: int = Field(4, ge=1, le=12, description="Thumbnails per class (the first files of each, by name)")
    size: int = Field(96, ge=32, le=256, description="The longest side of each thumbnail, in pixels")
    max_classes: int = Field(20, ge=1, le=50, description="At most this many classes (by name)")


class Thumbnail(ResponseModel):
    path: str
    width: int
    height: int
    data_url: str = Field(description="data:image/png;base64,... (PNG; JPEG for photographs)")


class ClassThumbnails(ResponseModel):
    name: str
    files: int = Field(description="How many files the class holds")
    thumbnails: list[Thumbnail]
    unreadable: int = Field(0, description="Files among those picked that are not images Pillow can read")


class Thumbnails(ResponseModel):
    dataset: str
    version: int
    classes: list[ClassThumbnails]
    more_classes: int = Field(description="Classes left out by max_classes")


def class_of(path: str) -> str:
    """An image folder's class is its top-level folder (files at the top have none: ``""``)."""
    return path.split("/", 1)[0] if "/" in path else ""


def files_by_class(paths: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for path in sorted(paths):
        grouped[class_of(path)].append(path)
    return dict(sorted(grouped.items()))


def shrink(source: Path, size: int) -> tuple[str, int, int] | None:
    """The image at ``source`` shrunk to fit ``size`` pixels as a data URL, with its width and height; None when
    it is not an image Pillow reads safely."""
    from PIL import Image

    try:
        with Image.open(source) as image:
            if image.width * image.height > MAX_PIXELS:
                return None
            photograph = image.format == "JPEG"
            image.draft("RGB", (size, size))
            image.thumbnail((size, size))
            picture = image.convert("RGB" if photograph else "RGBA")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG" if photograph else "PNG", **({"quality": 85} if photograph else {}))
    media = "image/jpeg" if photograph else "image/png"
    return f"data:{media};base64,{base64.b64encode(buffer.getvalue()).decode()}", picture.width, picture.height


def class_thumbnails(manifest: dict[str, Path], query: ThumbnailQuery) -> tuple[list[ClassThumbnails], int]:
    """``manifest``: each file's path in the version and where its bytes are. The first ``per_class`` files of
    each of the first ``max_classes`` classes, and how many classes were left out."""
    grouped = files_by_class(list(manifest))
    shown = []
    for name, paths in list(grouped.items())[:query.max_classes]:
        thumbnails, unreadable = [], 0
        for path in paths[:query.per_class]:
            made = shrink(manifest[path], query.size)
            if made is None:
                unreadable += 1
                continue
            data_url, width, height = made
            thumbnails.append(Thumbnail(path=path, width=width, height=height, data_url=data_url))
        shown.append(ClassThumbnails(name=name, files=len(paths), thumbnails=thumbnails, unreadable=unreadable))
    return shown, max(0, len(grouped) - query.max_classes)
