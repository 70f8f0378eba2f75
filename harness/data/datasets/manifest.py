"""File manifests: which files a dataset consists of, their sizes and sha256 digests.

The list of expected files always comes from the dataset's own format (CIFAR-100: its three
pickles; FGVC-Aircraft: its txt files plus every image the split files list; Stanford Cars:
its .mat files plus every image the annotations name), never from whatever lies on disk.

Checking policy (``check_dataset`` runs it before every suite, so it must take seconds):

- **Every check**: every expected file exists with the size recorded in the manifest (one
  ``stat`` per file: 16k JPEGs take well under a second). A missing file is named; a file of
  the wrong size is named as corrupt (truncated or replaced).
- **Every check**: the small "always hash" files are re-hashed (annotation and split files,
  and CIFAR-100's pickles, 180 MB, about a second), so an edited split file is caught at once.
- **Every check**: a file whose modification time differs from the manifest's is re-hashed,
  which catches same-size in-place edits. A copy that resets every mtime costs one full
  re-hash; when the content still matches, the new mtimes are recorded.
- **First check** (no manifest yet): every file is hashed (sha256, plus md5 against official
  checksums where the dataset publishes them) and the manifest is written to
  ``<root>/cilbench-manifests/<dataset>.json``; a file whose md5 is not the official one is
  named and no manifest is written.
- ``cilbench data --verify``: every file is re-hashed and compared, official md5s included.

The manifest's digest (sha256 over its sorted path/size/sha256 lines, not the mtimes) keys the
decoded-image cache, so different data can never reuse another's cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness.records.safe_parse import load_json

log = logging.getLogger(__name__)

MANIFEST_DIR = "cilbench-manifests"
MANIFEST_SCHEMA = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str
    mtime_ns: int


@dataclass(frozen=True)
class Manifest:
    dataset: str
    files: dict[str, FileEntry]

    @property
    def digest(self) -> str:
        """sha256 over the sorted ``path size sha256`` lines: what the data *is*."""
        lines = (f"{p} {e.size} {e.sha256}\n" for p, e in sorted(self.files.items()))
        return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class ExpectedFiles:
    """Paths relative to the data root (posix), as the dataset's format defines them."""

    paths: tuple[str, ...]
    always_hash: frozenset[str] = frozenset()
    official_md5: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileCheck:
    """What a check found. ``manifest`` is None when files are missing, corrupt, or (with
    ``build=False``) when no manifest has been built yet."""

    missing: list[str]
    corrupt: list[str]  # "path: what is wrong"
    manifest: Manifest | None

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt and self.manifest is not None


def manifest_path(root: Path, dataset: str) -> Path:
    return root / MANIFEST_DIR / f"{dataset}.json"


def read_manifest(root: Path, dataset: str) -> Manifest | None:
    path = manifest_path(root, dataset)
    if not path.is_file():
        return None
    try:
        data = load_json(path.read_text(encoding="utf-8"), source=str(path))
        files = {p: FileEntry(**e) for p, e in data["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("ignoring unreadable manifest %s (%s); rebuilding it", path, error)
        return None
    return Manifest(dataset, files)


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Atomically (tmp then rename); a read-only root only costs a warning (and re-hashing)."""
    path = manifest_path(root, manifest.dataset)
    body = {
        "schema": MANIFEST_SCHEMA,
        "dataset": manifest.dataset,
        "digest": manifest.digest,
        "files": {p: vars(e) for p, e in sorted(manifest.files.items())},
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(body, indent=0))
        os.replace(tmp, path)
    except OSError as error:
        log.warning("could not write the manifest %s (%s); files will be re-hashed", path, error)


def hash_file(path: Path, *, with_md5: bool = False) -> tuple[str, str | None]:
    """(sha256, md5 or None) in one read of the file."""
    sha, md5 = hashlib.sha256(), hashlib.md5() if with_md5 else None
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            if md5 is not None:
                md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest() if md5 else None


def _hash_many(root: Path, paths: list[str], md5s: Mapping[str, str]) -> dict[str, tuple]:
    """Threads: hashlib releases the GIL, so reading and hashing overlap across files."""
    workers = max(1, min(8, 2 * (os.cpu_count() or 1)))
    with ThreadPoolExecutor(workers) as pool:
        digests = pool.map(lambda p: hash_file(root / p, with_md5=p in md5s), paths)
        return dict(zip(paths, digests, strict=True))


def check_files(
    root: Path, dataset: str, expected: ExpectedFiles, *, full: bool = False, build: bool = True
) -> FileCheck:
    """Apply the module's policy; never raises for bad data, the caller words the error."""
    stats: dict[str, os.stat_result] = {}
    missing = []
    for rel in expected.paths:
        try:
            stats[rel] = os.stat(root / rel)
        except OSError:
            missing.append(rel)
    if missing:
        return FileCheck(missing, [], None)
    manifest = read_manifest(root, dataset)
    if manifest is None:
        if not build:
            return FileCheck([], [], None)
        return _build(root, dataset, expected, stats)
    return _compare(root, manifest, expected, stats, full=full)


def _build(
    root: Path, dataset: str, expected: ExpectedFiles, stats: dict[str, os.stat_result]
) -> FileCheck:
    log.info("%s: hashing %d files to build its manifest (once)", dataset, len(stats))
    digests = _hash_many(root, list(expected.paths), expected.official_md5)
    corrupt = [
        f"{rel}: md5 {md5} is not the official {expected.official_md5[rel]}"
        for rel, (_, md5) in digests.items()
        if rel in expected.official_md5 and md5 != expected.official_md5[rel]
    ]
    if corrupt:
        return FileCheck([], corrupt, None)
    files = {
        rel: FileEntry(stats[rel].st_size, sha, stats[rel].st_mtime_ns)
        for rel, (sha, _) in digests.items()
    }
    manifest = Manifest(dataset, files)
    write_manifest(root, manifest)
    return FileCheck([], [], manifest)


def _compare(
    root: Path,
    manifest: Manifest,
    expected: ExpectedFiles,
    stats: dict[str, os.stat_result],
    *,
    full: bool,
) -> FileCheck:
    corrupt = [f"{rel}: not in the manifest" for rel in stats if rel not in manifest.files]
    corrupt += [f"{rel}: listed in the manifest but no longer expected" for rel in
                sorted(set(manifest.files) - set(stats))]  # fmt: skip
    to_hash = []
    for rel, st in stats.items():
        entry = manifest.files.get(rel)
        if entry is None:
            continue
        if st.st_size != entry.size:
            corrupt.append(f"{rel}: {st.st_size} bytes, the manifest says {entry.size} "
                           "(truncated or replaced)")  # fmt: skip
        elif full or rel in expected.always_hash or st.st_mtime_ns != entry.mtime_ns:
            to_hash.append(rel)
    md5s = expected.official_md5 if full else {}
    digests = _hash_many(root, to_hash, md5s)
    for rel, (sha, md5) in digests.items():
        if sha != manifest.files[rel].sha256:
            corrupt.append(f"{rel}: content changed since the manifest was built (sha256 differs)")
        elif md5 is not None and md5 != md5s[rel]:
            corrupt.append(f"{rel}: md5 {md5} is not the official {md5s[rel]}")
    if corrupt:
        return FileCheck([], corrupt, None)
    return FileCheck([], [], _refresh_mtimes(root, manifest, stats))


def _refresh_mtimes(root: Path, manifest: Manifest, stats: dict[str, os.stat_result]) -> Manifest:
    """Record new mtimes of files whose content was just confirmed, so they are not re-hashed."""
    changed = {r for r, st in stats.items() if st.st_mtime_ns != manifest.files[r].mtime_ns}
    if not changed:
        return manifest
    files = {
        r: FileEntry(e.size, e.sha256, stats[r].st_mtime_ns) if r in changed else e
        for r, e in manifest.files.items()
    }
    refreshed = Manifest(manifest.dataset, files)
    write_manifest(root, refreshed)
    return refreshed
