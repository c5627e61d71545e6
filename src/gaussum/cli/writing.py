"""Where a state goes: atomic replacement of regular files, streams for the rest, and the lock.

`write_output` never clobbers what it should not. A regular file (or a new name) is replaced
atomically: a temporary file in the same directory is written, flushed to disk (fsync), renamed
over the target (atomic on POSIX) and the directory fsynced, so a crash at any moment leaves the
old file or the new one. A symlink is written through: the temporary file goes beside the link's
final target, which is replaced, and the link stays. A FIFO or a character device (a terminal,
``/dev/stdout``) is written to as a stream, without rename, and ``-`` is standard output. A
directory, a block device or a missing folder is an `OutputError`.

`locked` serialises the commands that read, modify and write one state (``update``, ``merge``
and ``summarize`` onto a path): an exclusive ``fcntl.flock`` on a lock file beside the target,
held for the whole transaction. The lock file is removed when released (after checking, on
acquiring it, that the file locked is still the one at that path), so a directory keeps only
its states. Under the lock, temporary files left by a killed write are removed.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["OutputError", "final_path", "is_stream_target", "locked", "write_atomic", "write_output"]

# How often a lock held by another process is tried again under --wait.
_POLL_S = 0.05


class OutputError(ValueError):
    """A target that cannot be written; the message names it and says the old file is intact."""


def is_stream_target(target: str) -> bool:
    """True for ``-``, FIFOs and character devices: written as streams, never replaced."""
    if target == "-":
        return True
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def final_path(target: str) -> str:
    """The regular file a write to `target` replaces: symlinks followed to their end."""
    return os.path.realpath(target)


def _check_target(target: str) -> str:
    """The final path to replace; OutputError for a directory, a block device or a missing folder."""
    final = final_path(target)
    try:
        mode = os.stat(final).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(f"{target}: is a directory; name a file to write the state to")
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(f"{target}: is neither a regular file nor a stream; gaussum does not write there")
    directory = os.path.dirname(final)
    if not os.path.isdir(directory):
        raise OutputError(f"{target}: the folder {directory} does not exist")
    return final


def write_output(target: str, text: str, stdout: TextIO | None = None) -> None:
    """Write the state `text` to `target` (``-``: standard output) without clobbering.

    Raises
    ------
    OutputError
        For a target that is a directory, in a missing folder, or cannot be written (a full
        disk, no permission); the old file is then intact and no temporary file is left.
    """
    if target == "-":
        stream = stdout if stdout is not None else sys.stdout
        stream.write(text)
        stream.flush()
        return
    if is_stream_target(target):
        try:
            with open(target, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise OutputError(f"{target}: cannot write: {exc.strerror}") from None
        return
    final = _check_target(target)
    try:
        write_atomic(final, text)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOSPC:
            reason = "no space left on the device"
        raise OutputError(f"{target}: cannot write: {reason}; the old file is unchanged") from None


def write_atomic(path: str, text: str) -> None:
    """Replace the regular file at `path` with `text`: all of it or, after a crash, none of it."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: a directory cannot be opened for fsync
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_leftovers(final: str) -> None:
    """Remove the temporary files a killed write to `final` left (the lock is held)."""
    directory, name = os.path.split(final)
    # mkstemp's names: the prefix, 8 characters of [a-z0-9_], the suffix.
    pattern = re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}" + re.escape(".tmp"))
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        if pattern.fullmatch(entry):
            try:
                os.unlink(os.path.join(directory, entry))
            except OSError:
                pass


@contextmanager
def locked(target: str, wait: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock of `target` (none for streams) for the ``with`` block.

    Parameters
    ----------
    target : str
        The state path; the lock file is ``.NAME.lock`` beside its final target.
    wait : float or None
        Seconds to wait for another command holding the lock; None waits as long as it takes.

    Raises
    ------
    OutputError
        When the lock is still held after `wait` seconds, or the folder does not exist.
    """
    if is_stream_target(target):
        yield
        return
    import fcntl  # POSIX; imported here so that the rest of the module loads anywhere

    final = _check_target(target)
    directory, name = os.path.split(final)
    lock = os.path.join(directory, f".{name}.lock")
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"{target}: cannot create the lock file {lock}: {exc.strerror}") from None
        try:
            if deadline is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise OutputError(
                                f"{target} is locked by another gaussum command (lock file {lock}); "
                                f"gave up after waiting {wait:g} s (--wait)"
                            ) from None
                        time.sleep(_POLL_S)
            # The holder before us removes the lock file on release; if it did, the file we
            # locked is no longer the one at that path, and another process may hold that one.
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        _remove_leftovers(final)
        yield
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass
        os.close(fd)
