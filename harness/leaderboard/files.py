"""Writing the site's files: pages, assets and raw records, built aside and swapped in whole.

A build never writes into the output folder. It writes a complete new site into a fresh
folder beside it, then swaps that folder in with one rename, so a full or read-only disk, a
crash or an error part-way leaves the previous site exactly as it was. The new folder also
receives the manifest ``.cilbench-site.json`` (every file the build wrote) and every file of
the old folder that the previous manifest does not list: the site owns only its own files.
A folder without a manifest is built into only when it is empty, holds just ``README.md``
(as ``site/`` ships), or is, file for file, a site of an older build.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from harness.leaderboard import aggregate
from harness.leaderboard.columns import COLUMN_BY_KEY, TASK_AWARE
from harness.records.safe_parse import load_json

TEMPLATE_DIR = Path(__file__).parent / "templates"
ASSETS = {"style.css": "style.css.j2", "leaderboard.js": "leaderboard.js.j2"}
MANIFEST = ".cilbench-site.json"
GENERATOR = "cilbench site"
# A folder holding only these is as good as empty (site/ ships with its README.md).
SHIPPED = frozenset({"README.md"})
# Every file an older build (one without a manifest) could have written; and the footer line
# of its pages that says it wrote them.
LEGACY_FILES = re.compile(
    r"index\.html|style\.css|leaderboard\.js|suites/[^/]+\.html|entries/[^/]+/[^/]+\.html"
    r"|plots/[^/]+-(pareto-(acc|aia)\.(svg|png)|plain-vs-enhanced\.svg)|records/[^/]+\.json"
)
LEGACY_MARK = "Built by <code>cilbench site</code>"
SHOWN_FOREIGN = 5  # foreign files named in an error; the rest are counted

logger = logging.getLogger(__name__)


class SiteFolderError(ValueError):
    """The output folder holds files the site builder did not write and must not replace."""


@cache  # compiled templates are reused by every page (and inherited by forked workers)
def template_environment() -> jinja2.Environment:
    """The site's Jinja environment: autoescaping, strict about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        # select_autoescape() decides by extension and would not match "index.html.j2".
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in the template fails the build, not the page
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        task_aware=TASK_AWARE,
        column_by_key=COLUMN_BY_KEY,
        accuracy_metrics=aggregate.ACCURACY_METRICS,
        min_seeds=aggregate.MIN_SEEDS,
        counter_limit=f"{aggregate.COUNTER_DISAGREEMENT_LIMIT_PCT:g}",
    )
    return env


def template_source(env: jinja2.Environment, name: str) -> str:
    """A template's text as is (CSS and JS are copied, not rendered)."""
    assert env.loader is not None
    return env.loader.get_source(env, name)[0]


def write_page(env: jinja2.Environment, template: str, path: Path, **context: Any) -> None:
    """Render ``template`` with ``context`` into ``path`` (its folder made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(env.get_template(template).render(**context), encoding="utf-8")


def publish_record(record: Mapping[str, Any], source: Path | None, target: Path) -> None:
    """Put a shown record next to the pages, so its link works from file:// and any host.

    A hard link to the file in results/ when possible: the same bytes, and on slow disks a
    hundred times faster than a copy. The target is always new (the build writes into a fresh
    folder), so nothing is ever written through a link into results/.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        try:
            os.link(source, target)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, target)
        return
    # As write_record lays a record out (a NaN in a field the site does not show stays NaN).
    target.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- the output folder


@dataclass(frozen=True)
class OutputFolder:
    """What is in the output folder now: whether it exists, and which files are whose."""

    exists: bool
    owned: frozenset[str]  # relative paths the builder wrote last time (replaced or dropped)
    foreign: tuple[str, ...]  # everything else: kept, byte for byte, in the new site


def inspect_output_folder(out_dir: Path) -> OutputFolder:
    """Sort the output folder's files into the builder's and everyone else's.

    Raises ``SiteFolderError`` for a folder the builder must not take over: not a folder, a
    broken manifest, or other people's files and no manifest to tell them from the site's.
    """
    if not out_dir.exists():
        return OutputFolder(False, frozenset(), ())
    if not out_dir.is_dir():
        raise SiteFolderError(f"{out_dir} is not a folder; choose another folder for the site")
    files = sorted(_files_under(out_dir))
    manifest = out_dir / MANIFEST
    if manifest.exists():
        owned = _read_manifest(manifest)
    elif all(f in SHIPPED for f in files):
        owned = frozenset()
    elif _is_legacy_site(out_dir, files):
        owned = frozenset(f for f in files if f not in SHIPPED)
        logger.info("%s: a site of an older build (no manifest); replacing it", out_dir)
    else:
        # Of a folder that looks like an older build, name only the files it would not write.
        legacy = "index.html" in files and _has_legacy_mark(out_dir)
        foreign = [
            f for f in files if f not in SHIPPED and not (legacy and LEGACY_FILES.fullmatch(f))
        ]
        named = ", ".join(foreign[:SHOWN_FOREIGN])
        more = f" and {len(foreign) - SHOWN_FOREIGN} more" if len(foreign) > SHOWN_FOREIGN else ""
        raise SiteFolderError(
            f"refusing to build the site into {out_dir}: it holds files the site builder did "
            f"not write ({named}{more}) and no {MANIFEST} listing the builder's own. Choose an "
            "empty or new folder (cilbench site --out DIR), or move those files away."
        )
    foreign = tuple(f for f in files if f not in owned and f != MANIFEST)
    return OutputFolder(True, owned, foreign)


def _files_under(folder: Path) -> list[str]:
    """Relative paths of every file and link below ``folder``, and of its empty folders."""
    found = []
    for parent, dirs, files in os.walk(folder):
        relative = Path(parent).relative_to(folder)
        for name in dirs:
            path = Path(parent, name)
            if path.is_symlink():  # os.walk does not follow it: carry the link itself
                found.append((relative / name).as_posix())
            elif os.path.ismount(path):
                raise SiteFolderError(
                    f"{path} is a mount point inside the site folder {folder}; the site is "
                    "replaced as a whole, so build it elsewhere"
                )
            elif not os.listdir(path):
                found.append((relative / name).as_posix() + "/")
        found += [(relative / name).as_posix() for name in files]
    return found


def _read_manifest(path: Path) -> frozenset[str]:
    try:
        data = load_json(path.read_text(encoding="utf-8"), source=path.name)
        if data.get("generator") != GENERATOR or not isinstance(data.get("files"), list):
            raise ValueError("not a site manifest")
        return frozenset(str(f) for f in data["files"])
    except (OSError, ValueError, AttributeError) as error:
        raise SiteFolderError(
            f"{path} is not a readable site manifest ({error}); without it the builder cannot "
            "tell its files from yours. Build into another folder, or delete the manifest and "
            "every file the site wrote."
        ) from error


def _is_legacy_site(out_dir: Path, files: list[str]) -> bool:
    """True for a folder holding exactly what an older build writes, and its index page."""
    if "index.html" not in files:
        return False
    if not all(f in SHIPPED or LEGACY_FILES.fullmatch(f) for f in files):
        return False
    return _has_legacy_mark(out_dir)


def _has_legacy_mark(out_dir: Path) -> bool:
    index = out_dir / "index.html"
    return index.is_file() and LEGACY_MARK in index.read_text(encoding="utf-8", errors="replace")


def new_stage_folder(out_dir: Path) -> Path:
    """A fresh, empty folder beside ``out_dir`` (same file system, so it can be renamed in)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    while True:
        stage = out_dir.parent / f".{out_dir.name}.building-{secrets.token_hex(4)}"
        try:
            stage.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0o700
            return stage
        except FileExistsError:
            continue


def swap_in(stage: Path, out_dir: Path, *, written: set[str], previous: OutputFolder) -> None:
    """Add the manifest and the old folder's foreign files to ``stage``; swap it in."""
    clashes = sorted(f for f in previous.foreign if f.rstrip("/") in written)
    if clashes:
        raise SiteFolderError(
            f"refusing to replace {', '.join(clashes[:SHOWN_FOREIGN])} in {out_dir}: the site "
            "now writes a file there, but it is not one the builder wrote before. Move it away "
            "and build again."
        )
    for relative in previous.foreign:
        _carry(out_dir / relative, stage / relative)
    manifest = {"generator": GENERATOR, "files": sorted(written)}
    (stage / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    if not previous.exists:
        os.rename(stage, out_dir)
        return
    shutil.copymode(out_dir, stage)
    _swap(stage, out_dir)
    # ``stage`` now holds the previous site; everything of anyone else's is also in the new one.
    shutil.rmtree(stage, ignore_errors=True)
    if stage.exists():
        logger.warning("could not remove the previous site, now in %s; delete it by hand", stage)


def _carry(source: Path, target: Path) -> None:
    """Keep a file of someone else's: a hard link (same bytes, no copy), a copy, or the link."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():  # an empty folder of theirs
        target.mkdir(exist_ok=True)
        shutil.copymode(source, target)
    else:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def _swap(stage: Path, out_dir: Path) -> None:
    """Exchange the two folders: atomically where the system can, else by two renames."""
    try:
        exchange_folders(stage, out_dir)
        return
    except OSError as error:
        if error.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
            raise
    aside = out_dir.parent / f".{out_dir.name}.previous-{secrets.token_hex(4)}"
    os.rename(out_dir, aside)
    try:
        os.rename(stage, out_dir)
    except BaseException:
        os.rename(aside, out_dir)
        raise
    os.rename(aside, stage)


def exchange_folders(first: Path, second: Path) -> None:
    """Linux's renameat2(RENAME_EXCHANGE): both names swap folders at once."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError) as error:
        raise OSError(errno.ENOSYS, "renameat2 is not available") from error
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(second))
