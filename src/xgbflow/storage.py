"""Reading and writing through storage URIs: local paths by default, object storage
(s3://, gs://, ...) through fsspec.

Writes are atomic where the filesystem allows it: content goes to a temporary name
beside the target and is moved into place only when complete, so a failed step leaves
nothing half-written behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import fsspec

logger = logging.getLogger(__name__)


def is_local(uri: str) -> bool:
    """True for plain paths and file:// URIs."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def exists(uri: str) -> bool:
    fs, path = fsspec.core.url_to_fs(uri)
    return fs.exists(path)


@contextlib.contextmanager
def open_for_writing(uri: str) -> Iterator[IO[bytes]]:
    """Open `uri` for binary writing; the file appears only if the block succeeds."""
    fs, path = fsspec.core.url_to_fs(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    partial = f"{path}.partial-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(partial, "wb") as handle:
            yield handle
        fs.mv(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            fs.rm(partial)
        raise


@contextlib.contextmanager
def staging_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A scratch directory whose contents become the local directory `target`.

    If `target` already exists it is replaced; if the block fails, `target` is untouched
    and the scratch directory is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    scratch.chmod(0o755)  # mkdtemp makes it private; the result is meant to be shared
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    scratch.rename(target)


def upload_directory(source: str | os.PathLike[str], uri: str) -> None:
    """Copy a local directory's files to `uri`, a local path or storage prefix."""
    source = Path(source)
    if is_local(uri):
        destination = local_path(uri)
        with staging_directory(destination) as scratch:
            shutil.copytree(source, scratch, dirs_exist_ok=True)
        return

    fs, path = fsspec.core.url_to_fs(uri)
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        remote = f"{path.rstrip('/')}/{file.relative_to(source).as_posix()}"
        logger.info("uploading %s to %s", file, remote)
        fs.put_file(str(file), remote)
