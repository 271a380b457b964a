"""Byte-level text helpers shared by the in-situ readers: line endings, encodings, lines.

Everything works on whole buffers (bytes methods, numpy, Arrow compute), never a
Python loop per line, so a year of hourly readings parses in milliseconds.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# A plain decimal number as the providers write them (no nan/inf words).
NUMBER_RE = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")


# Plausible reading times (UTC): also keeps datetime64[ns] far from its 1677..2262 limits.
EARLIEST = np.datetime64("1900-01-01T00:00:00", "s")
LATEST = np.datetime64("2200-01-01T00:00:00", "s")


def normalise_newlines(data: bytes) -> bytes:
    """CR, LF, CRLF and any mix of them -> LF, on the whole buffer."""
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def to_utf8(data: bytes) -> bytes:
    """The buffer as UTF-8: kept as is when valid UTF-8, else read as Latin-1 (never fails)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1").encode("utf-8")
    return data


def clean_text(data: bytes) -> bytes:
    """UTF-8 with LF line endings and a final newline: the form every parser here reads."""
    out = to_utf8(normalise_newlines(data))
    if out and not out.endswith(b"\n"):
        out += b"\n"
    return out


def split_lines(data: bytes) -> tuple[pa.Array, np.ndarray]:
    """Non-blank lines of a clean buffer, trimmed, as an Arrow string array + 1-based numbers.

    Built straight from the buffer with numpy offsets, no per-line Python objects.
    """
    if not data:
        return pa.array([], type=pa.string()), np.zeros(0, dtype=np.int64)
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    if data[-1:] != b"\n":
        ends = np.append(ends, len(data))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    lines: pa.Array = pc.ascii_trim_whitespace(
        pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    )
    # Blank lines (empty or whitespace only) are left out; numbers count every line.
    nonblank = pc.greater(pc.binary_length(lines), 0).to_numpy(zero_copy_only=False)
    numbers = np.flatnonzero(nonblank) + 1
    if not nonblank.all():
        lines = lines.filter(pa.array(nonblank))
    return lines, numbers


def tokens(lines: pa.Array, max_splits: int | None = None) -> tuple[pa.Array, np.ndarray]:
    """Whitespace tokens of each trimmed line; after ``max_splits`` splits the rest stays whole."""
    parts = pc.ascii_split_whitespace(lines, max_splits=max_splits)
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    return parts, counts.astype(np.int64)


def token(parts: pa.Array, i: int) -> pa.Array:
    """The ``i``-th token of every line, or an empty string where a line has fewer."""
    sep = pa.scalar("", type=parts.type.value_type)
    return pc.binary_join(pc.list_slice(parts, i, i + 1), sep)


def first_line(data: bytes, limit: int = 65536) -> str:
    """The first non-blank line of a raw buffer (any line ending, any encoding), stripped."""
    head = clean_text(data[:limit])
    for raw in head.split(b"\n"):
        if raw.strip():
            return raw.decode("utf-8", errors="replace").strip()
    return ""
