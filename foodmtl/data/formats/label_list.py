"""``<folder>/<file> <label>`` list files (Food2K, Food1K), read at C speed for a million lines.

pandas' string methods make one Python call per row when pyarrow is absent (as here): seconds
per operation at 1M rows. So the lines are checked with numpy on the raw bytes (token
boundaries, the digits of the label and of the folder in front of the first ``/``), and the
keys are cut out with one byte mask (``keys_text``) into the buffer of a ``PathArray`` (the images
folder its one prefix): no Python loop over lines, no ``str`` per line.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from foodmtl.data.path_array import PathArray
from foodmtl.errors import DataError

FORM = "'<class id>/<file> <class id>'"
WHITESPACE = np.zeros(256, bool)
WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True  # exactly what bytes.split() splits on
SEPARATOR = np.zeros(256, bool)
SEPARATOR[list(b"/\\")] = True
MAX_DIGITS = 9


@dataclass
class LabelList:
    paths: PathArray       # '<images>/<folder>/<file>' per line, '/'-separated
    labels: np.ndarray     # int64 class id per path
    lines: np.ndarray      # line number of each path, for error messages


def read_label_list(path: Path, classes: int, images: Path) -> LabelList:
    """Image paths (under ``images``) and labels of the non-blank lines. A line that is not
    ``<id>/<file> <id>`` (the same id twice, below ``classes``) raises DataError naming it.
    Accepted variants: tab or spaces, a leading ``/``, ``\\`` separators, no extension (``.jpg``
    is added), a byte-order mark."""
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    buf = np.frombuffer(data, np.uint8)
    key_start, key_end, lines, labels, bad = split_lines(path, data, buf)
    key_start += SEPARATOR[buf[key_start]]  # a leading separator
    folder_end = first_at_or_after(np.flatnonzero(SEPARATOR[buf]), key_start, key_end)
    folders, bad_folder = digits(buf, key_start, folder_end)
    bad |= (labels >= classes) | bad_folder | (folders != labels) | (folder_end >= key_end - 1)
    del folders, bad_folder  # every array of a line lives to the end: the peak is their sum
    if bad.any():
        fail(path, data, int(lines[np.argmax(bad)]),
             f"expected {FORM}, the folder being the class id 0..{classes - 1}")
    has_extension = dot_after(buf, folder_end, key_end)
    paths = image_paths(path, keys_text(buf, key_start, key_end), key_end - key_start, f"{images}/", has_extension)
    return LabelList(paths, labels, lines)


def split_lines(path: Path, data: bytes, buf: np.ndarray) -> tuple[np.ndarray, ...]:
    """Key start and end, line number, label and whether it is no number, of each non-blank line;
    a line of other than two tokens fails."""
    starts, ends, token_lines = tokens(buf)
    per_line = np.bincount(token_lines)
    wrong = np.flatnonzero((per_line != 0) & (per_line != 2))
    if wrong.size:
        fail(path, data, int(wrong[0]) + 1, f"expected {FORM}")
    if not starts.size:
        raise DataError(path, "lists no images")
    labels, bad = digits(buf, starts[1::2], ends[1::2])
    return starts[0::2].copy(), ends[0::2].copy(), token_lines[0::2] + 1, labels, bad  # copies: the rest is freed


def dot_after(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Whether each ``buf[start:end]`` holds a ``.`` (the file name's extension, after its folder)."""
    dots = np.flatnonzero(buf == ord("."))
    last_dot = np.append(dots, -1)[np.searchsorted(dots, end) - 1]  # -1: no dot before the end
    return last_dot > start


def tokens(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end offsets of every whitespace-separated token, and its 0-based line."""
    edge = np.diff(WHITESPACE[buf].view(np.int8), prepend=np.int8(1), append=np.int8(1))
    starts, ends = np.flatnonzero(edge == -1), np.flatnonzero(edge == 1)
    return starts, ends, np.searchsorted(np.flatnonzero(buf == ord("\n")), starts)


def digits(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The decimal number in each ``buf[start:end]``, and where it is none (empty, too long, not
    all digits)."""
    length = end - start
    bad = (length < 1) | (length > MAX_DIGITS)
    value = np.zeros(len(start), np.int64)
    for place in range(min(MAX_DIGITS, int(length.max(initial=0)))):
        inside = place < length
        digit = buf[np.where(inside, end - 1 - place, 0)].astype(np.int64) - ord("0")
        bad |= inside & ((digit < 0) | (digit > 9))
        value += np.where(inside, digit, 0) * 10**place
    return value, bad


def first_at_or_after(positions: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The first of ``positions`` at or after each ``start``; ``end`` where none is before it."""
    if not positions.size:
        return end
    i = np.searchsorted(positions, start)
    found = positions[np.minimum(i, len(positions) - 1)]
    return np.where((i < len(positions)) & (found < end), found, end)


def keys_text(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> bytes:
    """The keys ``buf[start:end]``, one a line, cut out with one mask (the whitespace byte after
    each key becomes its newline) rather than as a million ``bytes`` objects."""
    edges = np.zeros(len(buf) + 1, np.int8)
    edges[start], edges[end + 1] = 1, -1  # a label token always lies between one key's end and the next start
    inside = np.cumsum(edges[:-1], dtype=np.int8).view(bool)  # 0 or 1: a view, not another copy
    text = buf[inside]
    text[np.cumsum(end - start + 1) - 1] = ord("\n")
    return text[:-1].tobytes()


def image_paths(path: Path, keys: bytes, lengths: np.ndarray, prefix: str, has_extension: np.ndarray) -> PathArray:
    """``prefix`` + each line of ``keys`` (``lengths`` bytes long), '/'-separated, with ``.jpg`` added
    where it has no extension."""
    try:
        keys.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None
    starts = np.zeros(len(lengths), np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])  # each key is followed by its newline
    codes = (~has_extension).astype(np.int8)
    return PathArray(keys.replace(b"\\", b"/"), starts, starts + lengths, codes, ((prefix, ""), (prefix, ".jpg")))


def fail(path: Path, data: bytes, line: int, what: str) -> None:
    text = data.split(b"\n")[line - 1].decode("utf-8", "replace").strip()
    raise DataError(path, f"{what}, got '{text}'", line=line)
