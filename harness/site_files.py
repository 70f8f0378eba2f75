"""Writing the site's files: pages from templates, assets, raw records, and stale-file pruning."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from harness import aggregate
from harness.site_columns import COLUMN_BY_KEY, COLUMNS, TASK_AWARE

TEMPLATE_DIR = Path(__file__).parent / "templates"
ASSETS = {"style.css": "style.css.j2", "leaderboard.js": "leaderboard.js.j2"}
# Generated subfolders and the file kinds the build owns in them; only these are cleaned.
OWNED = {
    "suites": (".html",),
    "entries": (".html",),
    "plots": (".svg", ".png"),
    "records": (".json",),
}


@cache  # compiled templates are reused by every page (and inherited by forked workers)
def _environment() -> jinja2.Environment:
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
        columns=COLUMNS,
        task_aware=TASK_AWARE,
        column_by_key=COLUMN_BY_KEY,
        accuracy_metrics=aggregate.ACCURACY_METRICS,
        min_seeds=aggregate.MIN_SEEDS,
    )
    return env


def _raw_template(env: jinja2.Environment, name: str) -> str:
    """A template's text as is (CSS and JS are copied, not rendered)."""
    assert env.loader is not None
    return env.loader.get_source(env, name)[0]


def _write_page(env: jinja2.Environment, template: str, path: Path, **context: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(env.get_template(template).render(**context), encoding="utf-8")


def _publish_record(record: Mapping[str, Any], source: Path | None, target: Path) -> None:
    """Put a shown record next to the pages, so its link works from file:// and any host.

    A hard link to the file in results/ when possible: the same bytes, and on slow disks a
    hundred times faster than a copy. Never written through: an old link is replaced, not
    opened for writing, or a rebuild could change a record in results/.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        if target.exists() and os.path.samefile(source, target):
            return
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, target)
        return
    text = json.dumps(record, indent=1) + "\n"  # as write_record lays a record out
    if target.exists():
        if target.read_text(encoding="utf-8") == text:
            return
        target.unlink()
    target.write_text(text, encoding="utf-8")


def _prune(out_dir: Path, written: set[str]) -> None:
    """Remove what an earlier build wrote and this one did not (pages of vanished entries).

    Files are overwritten in place rather than deleted first: on some disks deleting costs ten
    times more than rewriting. Only the file kinds this builder writes, inside its own
    subfolders, are touched: pointing ``--out`` at the wrong folder must not delete anything.
    """
    for folder, suffixes in OWNED.items():
        # os.walk and plain strings: a site has tens of thousands of files to look at.
        for parent, _dirs, files in os.walk(out_dir / folder, topdown=False):
            relative = Path(parent).relative_to(out_dir).as_posix()
            for name in files:
                if name.endswith(suffixes) and f"{relative}/{name}" not in written:
                    os.unlink(os.path.join(parent, name))
            if not os.listdir(parent):
                os.rmdir(parent)
