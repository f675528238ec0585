"""Quality reports of image folders: one sub-folder per class, each image's header read and verified
with Pillow."""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from pathlib import Path

from ..tabular import DatasetFormatError
from .models import (
    MAX_CLASSES_LISTED,
    MAX_UNREADABLE_LISTED,
    ClassBalance,
    ClassCount,
    ImageFolderReport,
    SizeStats,
    UnreadableFile,
    _fraction,
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"})


def image_folder_report(root: str | os.PathLike[str], *, full_decode: bool = False) -> ImageFolderReport:
    """Profiles a folder of class sub-folders (``root/<class>/**/<image>``) with Pillow.

    Each image's header is read and verified (Pillow's ``verify``: structure and PNG checksums, no
    pixel decoding); ``full_decode=True`` also decodes the pixels, which catches truncated JPEG data
    at many times the cost.
    """
    from PIL import Image

    started = time.perf_counter()
    root_path = Path(root)
    if not root_path.is_dir():
        raise DatasetFormatError("an image dataset must be a folder of class folders; {name!r} is not a folder",
                                 name=root_path.name)
    class_dirs = sorted(child for child in root_path.iterdir() if child.is_dir() and not child.name.startswith("."))
    ignored = sum(1 for child in root_path.iterdir() if child.is_file())
    counts: dict[str, int] = {}
    widths: list[int] = []
    heights: list[int] = []
    formats: Counter[str] = Counter()
    unreadable: list[UnreadableFile] = []
    unreadable_count = 0
    file_count = 0
    for class_dir in class_dirs:
        counts[class_dir.name] = 0
        for file in sorted(class_dir.rglob("*")):
            if not file.is_file():
                continue
            relative = file.relative_to(root_path)
            if any(part.startswith(".") for part in relative.parts) or file.suffix.lower() not in IMAGE_SUFFIXES:
                ignored += 1
                continue
            file_count += 1
            try:
                with Image.open(file) as image:
                    width, height = image.size
                    image_format = image.format or file.suffix.lstrip(".").upper()
                    image.verify()
                if full_decode:
                    with Image.open(file) as image:
                        image.load()
            except Exception as error:  # noqa: BLE001 - any failure to read makes the file unreadable
                unreadable_count += 1
                if len(unreadable) < MAX_UNREADABLE_LISTED:
                    unreadable.append(UnreadableFile(path=relative.as_posix(),
                                                     reason=f"{type(error).__name__}: {error}"[:300]))
                continue
            counts[class_dir.name] += 1
            widths.append(width)
            heights.append(height)
            formats[image_format] += 1
    if file_count == 0:  # nothing to learn from: refused rather than kept as an empty version
        raise DatasetFormatError("an image dataset is a folder of class folders holding images ({suffixes}); "
                                 "this one has none ({ignored} other files)",
                                 suffixes=", ".join(sorted(IMAGE_SUFFIXES)), ignored=ignored)
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    balance = ClassBalance(
        column=None, class_count=len(counts), total=total,
        classes=[ClassCount(value=name, count=n, fraction=_fraction(n, total))
                 for name, n in ordered[:MAX_CLASSES_LISTED]],
        min_class_fraction=_fraction(min(counts.values()), total) if counts else None,
        max_class_fraction=_fraction(max(counts.values()), total) if counts else None,
    )
    return ImageFolderReport(
        image_count=total, file_count=file_count, class_count=len(counts), class_balance=balance,
        width=_size_stats(widths), height=_size_stats(heights), formats=dict(sorted(formats.items())),
        unreadable_count=unreadable_count, unreadable_fraction=_fraction(unreadable_count, file_count),
        unreadable=unreadable, ignored_files=ignored, elapsed_seconds=round(time.perf_counter() - started, 3),
    )


def _size_stats(values: list[int]) -> SizeStats:
    if not values:
        return SizeStats(min=None, max=None, median=None)
    return SizeStats(min=min(values), max=max(values), median=float(statistics.median(values)))
