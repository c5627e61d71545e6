"""Data inputs opened once: regular files, standard input, named pipes and devices, hashed as read.

An `Input` is one argument of the command line, opened exactly once. Every byte a format
reader takes from it goes through `HashingReader`, so the SHA-256 that the ledger records is the
hash of the very bytes that were parsed, whatever happens to the file meanwhile (replaced, grown,
a pipe that cannot be read twice). Compressed inputs (gzip, bzip2, xz, zstd) are recognised by
their first bytes, not their names, so ``cat a.csv.gz | gaussum summarize -`` works too; the hash
is that of the compressed bytes, the file as it is on disk.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, cast

__all__ = ["COMPRESSED_ENDINGS", "HashingReader", "Input", "InputError", "open_input", "read_exactly"]

#: Name endings of compressed files; the format is read from the ending before them.
COMPRESSED_ENDINGS = (".gz", ".bz2", ".xz", ".zst")

# The first bytes of each compressed format, and its name.
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))

_READ_BLOCK = 1 << 20
# Reads at least this large are hashed in a worker thread.
_HASH_IN_THREAD_FROM = 1 << 20


class InputError(ValueError):
    """An input that cannot be opened; the message names it."""


class HashingReader(io.RawIOBase):
    """A binary stream that hashes and counts every byte read from the stream it wraps.

    `peek` reads ahead (hashing as it goes) and hands the same bytes out again to the next reads,
    so the format and compression can be recognised without reading anything twice.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._pending = b""
        self._sha256 = hashlib.sha256()
        self._pool: ThreadPoolExecutor | None = None
        self._hashing: Future[None] | None = None
        self.bytes_read = 0
        self.last_byte = b""

    def readable(self) -> bool:
        return True

    def _from_raw(self, n: int) -> bytes:
        data = self._raw.read(n)
        if data:
            self.bytes_read += len(data)
            self.last_byte = data[-1:]
            if self._pool is None and len(data) < _HASH_IN_THREAD_FROM:
                self._sha256.update(data)
            else:
                # hashlib releases the GIL on large buffers, so the hash of this block runs
                # beside the parsing of the previous one (a third of the time of a CSV read).
                # One block in flight at most: memory stays at two blocks.
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="gaussum-sha256")
                self._wait()
                self._hashing = self._pool.submit(self._sha256.update, data)
        return data

    def _wait(self) -> None:
        if self._hashing is not None:
            self._hashing.result()
            self._hashing = None

    def close(self) -> None:
        if self._pool is not None:
            self._wait()
            self._pool.shutdown()
            self._pool = None
        super().close()

    def peek(self, n: int) -> bytes:
        """The next `n` bytes (fewer at the end), without consuming them."""
        while len(self._pending) < n:
            more = self._from_raw(n - len(self._pending))
            if not more:
                break
            self._pending += more
        return self._pending[:n]

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = [self._pending]
            self._pending = b""
            while chunk := self._from_raw(_READ_BLOCK):
                chunks.append(chunk)
            return b"".join(chunks)
        if self._pending:
            out, self._pending = self._pending[:n], self._pending[n:]
            return out
        return self._from_raw(n)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read_exactly(self, n: int) -> bytes:
        """`n` bytes, fewer only at the end of the stream (a pipe may return short reads)."""
        parts, got = [], 0
        while got < n:
            part = self.read(n - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def drain(self) -> None:
        """Read (and hash) to the end, so that the hash covers the whole input."""
        self._pending = b""
        while self._from_raw(_READ_BLOCK):
            pass

    def hexdigest(self) -> str:
        """SHA-256 of the bytes read so far (reading may go on)."""
        self._wait()
        return self._sha256.hexdigest()


def read_exactly(stream: Any, n: int) -> bytes:
    """`n` bytes, fewer only at the end (pipes and decompressors may return short reads)."""
    if isinstance(stream, HashingReader):
        return stream.read_exactly(n)
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


class Input:
    """One data input as given on the command line, opened once.

    Attributes
    ----------
    label : str
        The argument as given (``-`` for standard input), for messages.
    path : str or None
        The path to record in the ledger: None for standard input, pipes and devices, which
        cannot be found again by name.
    size : int or None
        The size of a regular file when it was opened, for the progress bar; None for streams.
    compression : str or None
        ``"gzip"``, ``"bzip2"``, ``"xz"``, ``"zstd"`` or None, from the first bytes.
    raw : HashingReader
        The bytes as stored (compressed, if they are), hashed as read.
    data : binary stream
        The bytes to parse: `raw`, or a decompressing stream over it.
    """

    def __init__(self, label: str, path: str | None, size: int | None, file: BinaryIO, close_file: bool) -> None:
        self.label = label
        self.path = path
        self.size = size
        self._file = file
        self._close_file = close_file
        self.raw = HashingReader(file)
        self.compression = _compression(self.raw.peek(6))
        self.data: Any = self.raw if self.compression is None else _decompressor(self.compression, self.raw, label)

    @property
    def is_regular(self) -> bool:
        return self.path is not None

    @property
    def file(self) -> BinaryIO:
        """The open file itself, for formats read by random access (Parquet)."""
        return self._file

    def fraction_done(self) -> float | None:
        """How much of a regular file has been read, in [0, 1]; None for a stream."""
        if not self.size:
            return None
        return min(1.0, self.raw.bytes_read / self.size)

    def close(self) -> None:
        self.raw.close()
        if self._close_file:
            self._file.close()

    def __enter__(self) -> Input:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _compression(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _decompressor(kind: str, raw: HashingReader, label: str) -> Any:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(cast(BinaryIO, raw), mode="rb")
    try:
        import zstandard
    except ImportError:
        raise InputError(
            f"{label}: zstd-compressed; reading it needs the zstandard package: pip install 'gaussum[cli]'"
        ) from None
    return zstandard.ZstdDecompressor().stream_reader(cast(BinaryIO, raw), read_across_frames=True)


def open_input(label: str, stdin: BinaryIO | None = None) -> Input:
    """Open the input named `label` (``-``: standard input) for one reading.

    Regular files are recorded by path; anything else that can be read (a pipe, ``/dev/stdin``,
    a process substitution, a terminal) is a stream, read once and recorded by its hash only.
    A directory, a missing file or one that cannot be opened is an `InputError`.
    """
    if label == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return Input("-", None, None, stream, close_file=False)
    try:
        # O_NONBLOCK would make a FIFO with no writer read as empty; a plain open waits for one,
        # as `cat` does.
        file = open(label, "rb", buffering=0)
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{label}: is a directory, not a data file") from None
    except OSError as exc:
        raise InputError(f"{label}: cannot read: {exc.strerror}") from None
    info = os.fstat(file.fileno())
    if stat.S_ISDIR(info.st_mode):
        file.close()
        raise InputError(f"{label}: is a directory, not a data file")
    # /dev/stdin, /dev/fd/N, /proc/self/fd/N name whatever the process was handed (a file
    # redirected with <, a pipe): not a path that finds the same data again.
    if stat.S_ISREG(info.st_mode) and not label.startswith(("/dev/", "/proc/")):
        return Input(label, label, info.st_size, file, close_file=True)
    return Input(label, None, None, file, close_file=True)
