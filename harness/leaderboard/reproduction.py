"""How an entry's page says to rerun a trial: the resolved config as ``--set`` options, the
``cilbench run`` line, and the plugin packages to install first."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any


def plain_text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)  # 1.0 stays "1.0": the value as recorded


def config_rows(config: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"scope": scope, "key": key, "value": plain_text_of(value)}
        for scope in sorted(config)
        if isinstance(config[scope], Mapping)
        for key, value in sorted(config[scope].items())
    ]


def reproduce_command(
    record: Mapping[str, Any], *, set_options: list[list[str]] | None = None
) -> str:
    """The ``cilbench run`` line that reruns this trial, one option per line.

    Every key of the resolved config is passed with ``--set``: the record does not say which
    values were defaults, and defaults may have changed since, so only explicit values rerun
    the same trial. ``set_options``: ``set_options_of`` of the record's config, if known.
    """
    method = record["method"]
    parts = [
        ["cilbench", "run", "--suite", str(record["suite"]["name"])],
        ["--method", f"{method['strategy']}+{method['framework']}"],
        ["--backbone", str(method["backbone"])],
        ["--seeds", str(record["seed"])],
        *(
            ["--weights", f"{name}={spec}"]
            for name, spec in sorted((method.get("weights_overrides") or {}).items())
        ),
    ]
    if set_options is None:
        set_options = set_options_of(method.get("config") or {})
    return " \\\n  ".join(" ".join(shlex.quote(p) for p in part) for part in parts + set_options)


def set_options_of(config: Mapping[str, Any]) -> list[list[str]]:
    """``--set scope.key=value`` per resolved key, values as the command line parses them."""
    options = []
    for row in config_rows(config):
        value = config[row["scope"]][row["key"]]
        text = value if isinstance(value, str) else json.dumps(value)
        options.append(["--set", f"{row['scope']}.{row['key']}={text}"])
    return options


def plugin_installs(record: Mapping[str, Any]) -> list[str]:
    """``pip install '<package>==<version>'`` for each plugin package the trial's adapters
    came from (``method.origins``): the reproduce command needs them registered first."""
    lines = []
    for origin in ((record.get("method") or {}).get("origins") or {}).values():
        if not isinstance(origin, Mapping) or origin.get("origin") != "plugin":
            continue
        package, version = origin.get("package"), origin.get("version")
        if isinstance(package, str) and package:
            pin = f"{package}=={version}" if isinstance(version, str) and version else package
            line = f"pip install {shlex.quote(pin)}"
            if line not in lines:
                lines.append(line)
    return lines
