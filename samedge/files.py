"""Atomic writes, streaming sha256 and safe relative paths.

Every artifact samedge writes goes through ``atomic_path``/``atomic_write_*``:
write to ``<name>.incomplete``, fsync, then ``os.replace``. A crash leaves the
old file (or nothing), never a half-written one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from .errors import IntegrityError, UserError

CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# Errors of the disk rather than of samedge: reported as one line (exit code 2), not a traceback.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def _is_disk_error(e: OSError) -> bool:
    """ENOSPC and friends; or a short write with no errno (numpy's ``tofile``, used by the GGUF
    writer, reports a full disk as "N requested and M written")."""
    return e.errno in DISK_ERRNOS or (e.errno is None and "written" in str(e))


def _disk_error(dest: Path, e: OSError) -> UserError:
    reason = e.strerror or f"short write: {e}; is the disk full?"
    return UserError(f"{dest}: could not write ({reason}); nothing was changed there")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike):
    """Yield a temporary path next to ``dest``; on success rename it to ``dest``.

    The writer may create the temp file any way it likes (e.g. a library that
    only accepts a filename). On an exception the temp file is removed; a full
    disk (or quota, or file size limit) becomes a one-line ``UserError``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".{os.getpid()}.incomplete")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except OSError as e:
        if _is_disk_error(e):
            raise _disk_error(dest, e) from e
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))


def read_json(path: str | os.PathLike):
    """A JSON file's content; a damaged one (not JSON, not UTF-8) is an IntegrityError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise IntegrityError(f"{path}: not valid JSON ({e})") from None


# A JSON list of numbers, as json.dumps(indent=2) lays it out: one number a line.
_NUMBER_LIST = re.compile(r"\[\n\s*(-?[0-9][-+0-9.eE]*(?:,\n\s*-?[0-9][-+0-9.eE]*)*)\n\s*\]")


def dumps_json(obj) -> str:
    """Indented JSON, except that lists of numbers stay on one line: an expert's 384-number
    centroid then takes one line, not 384, and 2.7 KB less of models/'s 100 MB."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)
    return _NUMBER_LIST.sub(lambda m: "[" + ",".join(x.strip() for x in m.group(1).split(",\n")) + "]", text)


def atomic_write_json(dest: str | os.PathLike, obj) -> None:
    atomic_write_text(dest, dumps_json(obj) + "\n")


@contextlib.contextmanager
def _publish_lock(dest: Path):
    """Serialise publishers of one destination (two builds racing to the same bundle)."""
    with file_lock(dest.with_name(f".{dest.name}.lock")):
        yield


def try_flock(path: Path, *, blocking: bool = True, create: bool = False) -> int | None:
    """samedge's one lock: an exclusive flock on ``path`` (a file, created if ``create``, or a
    directory). Returns its descriptor (close it to release); the kernel releases it too when the
    holder dies, even by SIGKILL, so a killed run never leaves a stale lock. None when
    ``blocking`` is False and someone else holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT if create else os.O_RDONLY, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def file_lock(lock_path: Path):
    """:func:`try_flock` on ``lock_path`` (created if absent), waited for and held for the block."""
    fd = try_flock(lock_path, create=True)
    try:
        yield
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _sweep_stale(dest: Path) -> None:
    """Remove the temp directories that killed writers of ``dest`` left behind (their lock died with them)."""
    import glob

    for stale in dest.parent.glob(f".{glob.escape(dest.name)}.*.incomplete"):
        try:
            fd = try_flock(stale, blocking=False)
        except OSError:
            continue
        if fd is None:
            continue  # a live writer holds it
        try:
            shutil.rmtree(stale, ignore_errors=True)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike, overwrite: bool = False):
    """Yield a fresh temp directory beside ``dest``; publish it whole on success.

    An interrupted writer leaves only a ``.<name>.*.incomplete`` directory, never
    a partial ``dest``; the next writer of ``dest`` removes such leftovers (each
    live writer holds an flock on its own, so only dead writers' are taken). With
    ``overwrite`` an existing ``dest`` is replaced in one atomic exchange where
    the OS allows it. Two writers racing to one ``dest`` publish one after the
    other; without ``overwrite`` the second is refused instead of mixing the two.
    A full disk is a one-line ``UserError``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and not overwrite:
        raise UserError(f"{dest} already exists (use --force to replace it)")
    _sweep_stale(dest)
    # Created under another suffix and locked before it gets the .incomplete name, so that a
    # concurrent sweep never sees it unlocked.
    creating = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".creating", dir=dest.parent))
    lock = try_flock(creating)
    tmp = creating.with_suffix(".incomplete")
    os.replace(creating, tmp)
    try:
        yield tmp
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    os.fsync(f.fileno())
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a published folder is an ordinary one
        with _publish_lock(dest):
            if dest.exists():
                if not overwrite:
                    raise UserError(f"{dest} was created by another process meanwhile; nothing was replaced")
                if not _exchange(tmp, dest):
                    # Move the old one aside first so that dest is never missing a file.
                    old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
                    os.replace(dest, old)
                    os.replace(tmp, dest)
                    shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, dest)
            _fsync_dir(dest.parent)
    except OSError as e:
        if _is_disk_error(e):
            raise _disk_error(dest, e) from e
        raise
    finally:
        if tmp.exists():  # an aborted write, or the old folder after an exchange
            shutil.rmtree(tmp, ignore_errors=True)
        os.close(lock)


def safe_relpath(name: str) -> PurePosixPath:
    """Validate a manifest file entry: relative, no ``..``, no backslashes."""
    p = PurePosixPath(name)
    if not name or p.is_absolute() or "\\" in name or any(part in ("..", "") for part in p.parts):
        raise IntegrityError(f"unsafe path in manifest: {name!r}")
    return p


def check_name(name: str, what: str = "name") -> str:
    """Names of experts, targets and bundles: no separators, no dots-only."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith(".") \
            or any(c in name for c in "\0:*?\"<>|") or len(name) > 100:
        raise UserError(f"invalid {what} {name!r}: use letters, digits, '-', '_' and '.'")
    return name


def hash_files(root: str | os.PathLike, names) -> dict[str, str]:
    root = Path(root)
    return {str(n): sha256_file(root / n) for n in sorted(names)}


def verify_files(root: str | os.PathLike, files: dict[str, str]) -> list[str]:
    """Return a list of problems (empty when every file matches its sha256)."""
    root = Path(root)
    problems = []
    for name, digest in sorted(files.items()):
        rel = safe_relpath(name)
        path = root / rel
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: sha256 mismatch")
    return problems


def samedge_home() -> Path:
    return Path(os.environ.get("SAMEDGE_HOME", Path.home() / ".cache" / "samedge"))
