"""Method cards: read from the adapters by the command line, laid out by the leaderboard."""

from __future__ import annotations

import copy
import filecmp
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.api.adapters import FRAMEWORKS, STRATEGIES, Strategy, load_adapters
from harness.cli import main
from harness.cli.common import EXIT_OK
from harness.cli.method_cards import adapter_card, method_cards
from harness.leaderboard.build import build_site
from harness.leaderboard.method_cards import card_href, docstring_blocks, segments
from harness.records.layout import record_path
from tests.test_aggregate import golden_records
from tests.test_site import EVIL_LABEL, GENERATED_AT, Page

EVIL_DOC = "<script>window.__pwned=3</script>"


@pytest.fixture(scope="module")
def cards() -> dict[str, dict[str, Any]]:
    return method_cards()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, cards: dict[str, dict[str, Any]]) -> Path:
    out = tmp_path_factory.mktemp("site")
    return build_site(golden_records(), out, generated_at=GENERATED_AT, cards=cards).parent


def entry_pages(site: Path) -> list[Page]:
    return [Page(path) for path in sorted((site / "entries").rglob("*.html"))]


def resolve(page: Page, href: str) -> Path:
    return (page.path.parent / href.split("#")[0]).resolve()


# ----------------------------------------------------------------- reading the adapters


def test_every_registered_strategy_and_framework_has_a_card(cards) -> None:
    load_adapters()
    expected = {f"strategy:{name}" for name in STRATEGIES.names()}
    expected |= {f"framework:{name}" for name in FRAMEWORKS.names()}
    assert set(cards) == expected
    json.dumps(cards)  # plain data: it crosses into the torch-free leaderboard
    built_in = [card for card in cards.values() if card["origin"]["origin"] == "built-in"]
    assert {card["name"] for card in built_in} >= {"lwf", "der", "wa", "kd", "prepruning"}
    for card in built_in:
        assert card["paper"].strip(), card["name"]
        assert card["description"].strip(), card["name"]
        assert "\n" not in card["paper"]


def test_the_paper_line_and_the_docstring_are_the_adapters_own(cards) -> None:
    wa = cards["strategy:wa"]
    assert wa["paper"].startswith("WA: Maintaining Discrimination and Fairness")
    assert "CVPR 2020" in wa["paper"]
    assert wa["description"].startswith("Rehearsal with distillation")
    assert "Deviations:" in wa["description"]  # as written, deviations included
    assert wa["class"] == "methods.strategies.wa.WA"


def test_config_defaults_come_with_the_comment_naming_their_source(cards) -> None:
    fields = {f["name"]: f for f in cards["strategy:wa"]["config"]["fields"]}
    assert fields["temperature"]["default"] == "2.0"
    assert "PyCIL" in fields["temperature"]["comment"]
    assert fields["temperature"]["comment"].startswith("temperature: 2.0")
    # Inherited fields keep their base's comment and say where it is.
    memo = {f["name"]: f for f in cards["strategy:memo"]["config"]["fields"]}
    assert memo["aux_weight"]["declared_in"] == "DERConfig"
    assert "lambda_a" in memo["aux_weight"]["comment"]
    assert memo["shared_blocks"]["default"] == "null"
    # "# a / b: ..." above two fields in a row documents both.
    post = {f["name"]: f for f in cards["framework:postpruning"]["config"]["fields"]}
    assert post["temperature"]["comment"].startswith("distill_weight / temperature:")
    # The house rule: every built-in default says where it comes from.
    undocumented = [
        f"{key}.{field['name']}"
        for key, card in cards.items()
        if card["origin"]["origin"] == "built-in"
        for field in card["config"]["fields"]
        if not field["comment"].strip()
    ]
    assert undocumented == []


def test_refusals_and_class_variables(cards) -> None:
    der = cards["strategy:der"]
    refused = {r["name"]: r["reason"] for r in der["refusals"]}
    assert "prepruning" in refused
    assert "expands" in refused["prepruning"] and "\n" not in refused["prepruning"]
    assert {r["name"] for r in cards["framework:prepruning"]["refusals"]} >= {"der", "memo"}
    assert not any(r["name"] == "prepruning" for r in cards["strategy:lwf"]["refusals"])
    facts = {v["name"]: v["value"] for v in der["class_vars"]}
    assert facts["network_growth"] == '"expands"'
    kd = {v["name"]: v["value"] for v in cards["framework:kd"]["class_vars"]}
    assert kd == {"compresses": "true"}


@dataclass(frozen=True)
class ToyConfig:
    # alpha: 0.5, a made-up value
    # for the test.
    alpha: float = 0.5

    beta: int = 3  # beta: trailing comment
    gamma: tuple[int, ...] = (1, 2)


class ToyStrategy(Strategy):
    """A <b>toy</b>."""

    Config: ClassVar[type] = ToyConfig
    network_growth: ClassVar[str | None] = "rebuilds"


def test_an_adapter_outside_the_harness_is_unpackaged_and_its_comments_are_read() -> None:
    card = adapter_card("strategy", "toy", ToyStrategy, refusals=[])
    assert card["origin"]["origin"] == "unpackaged"
    assert card["origin"]["module"] == __name__
    fields = {f["name"]: f for f in card["config"]["fields"]}
    assert fields["alpha"]["comment"] == "alpha: 0.5, a made-up value\nfor the test."
    assert fields["beta"]["comment"] == "beta: trailing comment"
    assert fields["gamma"] == {"name": "gamma", "type": "tuple[int, ...]", "default": "[1, 2]",
                               "range": "", "comment": "", "declared_in": "ToyConfig"}  # fmt: skip
    assert fields["alpha"]["range"] == "a finite number"  # a float: never NaN, declared or not
    assert card["description"] == "A <b>toy</b>."
    assert card["paper"].startswith("Method cards: read from the adapters")  # this module's
    assert {"name": "network_growth", "value": '"rebuilds"',
            "meaning": "replaces its network each task"} in card["class_vars"]  # fmt: skip


# ------------------------------------------------------------------------- the pages


def test_docstrings_become_paragraphs_lists_and_code_spans() -> None:
    text = "First line\ngoes on.\n\n- one ``x =\n  y``\n  more\n- two\nAfter.\n\n1. a\n2. b"
    blocks = docstring_blocks(text)
    assert [b["kind"] for b in blocks] == ["p", "ul", "p", "ol"]
    assert blocks[0]["segments"] == [("First line goes on.", False)]
    assert blocks[1]["items"][0] == [("one ", False), ("x = y", True), (" more", False)]
    assert blocks[3]["items"] == [[("a", False)], [("b", False)]]
    assert segments("``a`` and ``b``") == [("a", True), (" and ", False), ("b", True)]
    assert docstring_blocks("") == []


def test_card_files_are_safe_names() -> None:
    assert card_href("strategy", "der") == "methods/strategy-der.html"
    for odd in ("../x", "a/b", "..", "<x>"):
        href = card_href("framework", odd)
        assert href.startswith("methods/framework-") and "/" not in href[len("methods/") :]


def test_every_entry_links_its_strategys_and_frameworks_card(site: Path) -> None:
    pages = entry_pages(site)
    assert pages
    for page in pages:
        cards = [h for h in page.links if "methods/" in h]
        kinds = sorted(Path(h).name.split("-", 1)[0] for h in cards)
        assert kinds == ["framework", "strategy"], page.path
        for href in cards:
            target = resolve(page, href)
            assert target.is_file(), href
            name = Path(href).stem.split("-", 1)[1]
            assert f"{Path(href).stem.split('-', 1)[0]}: {name}" in page.page_text


def test_the_card_pages_show_paper_docstring_defaults_refusals_and_entries(site: Path) -> None:
    lwf = Page(site / "methods" / "strategy-lwf.html")
    assert "Learning without Forgetting (Li & Hoiem" in lwf.page_text
    assert "FACIL's lwf" in lwf.page_text  # the docstring's ``lwf`` as code, text intact
    defaults = {row[0]: row for row in lwf.rows("config-defaults")}
    assert defaults["temperature"][2] == "2.0"
    assert "Hinton" in defaults["temperature"][3]
    on_board = [resolve(lwf, h) for h in lwf.links if "/entries/" in h]
    assert len(on_board) == 4 and all(p.is_file() for p in on_board)
    pre = Page(site / "methods" / "framework-prepruning.html")
    refused = {row[0]: row[1] for row in pre.rows("refusals-table")}
    assert "der" in refused and "expands its network" in refused["der"]
    assert "Where this site was built: built-in" in pre.page_text


def test_the_methods_index_lists_every_card_and_the_index_links_it(site: Path) -> None:
    index = Page(site / "index.html")
    methods = Page(index.link_to("methods/index.html"))
    listed = sorted(resolve(methods, h) for h in methods.links if "-" in Path(h).name)
    cards = sorted(p.resolve() for p in (site / "methods").glob("*-*.html"))
    assert listed == cards
    assert {p.name for p in cards} == {
        "strategy-lwf.html", "strategy-joint.html",
        "framework-none.html", "framework-kd.html", "framework-prepruning.html",
    }  # fmt: skip
    assert "strategy der" in methods.page_text  # registered, not on the board
    manifest = json.loads((site / ".cilbench-site.json").read_text())["files"]
    assert {f"methods/{p.name}" for p in cards} | {"methods/index.html"} <= set(manifest)


def test_a_site_without_cards_builds_with_no_card_links(tmp_path: Path) -> None:
    site = build_site(golden_records(), tmp_path / "site", generated_at=GENERATED_AT).parent
    assert not (site / "methods").exists()
    assert not any("methods/" in h for page in entry_pages(site) for h in page.links)
    assert "methods-link" not in Page(site / "index.html").ids
    assert "strategy: lwf" in entry_pages(site)[0].page_text


def test_same_records_and_cards_give_the_same_bytes(tmp_path: Path, cards) -> None:
    for name in ("a", "b"):
        build_site(golden_records(), tmp_path / name, generated_at=GENERATED_AT, cards=cards)
    names = sorted(p.name for p in (tmp_path / "a" / "methods").iterdir())
    _, mismatch, errors = filecmp.cmpfiles(
        tmp_path / "a" / "methods", tmp_path / "b" / "methods", names, shallow=False
    )
    assert (mismatch, errors) == ([], [])


def test_untrusted_card_text_is_escaped(tmp_path: Path, cards) -> None:
    evil = copy.deepcopy(dict(cards))
    lwf = evil["strategy:lwf"]
    lwf["paper"] = EVIL_DOC
    lwf["description"] = f"{EVIL_DOC}\n\n- ``{EVIL_DOC}``"
    lwf["config"]["fields"][0]["comment"] = EVIL_LABEL
    lwf["refusals"] = [{"kind": "framework", "name": EVIL_DOC, "reason": EVIL_DOC}]
    lwf["origin"] = {"origin": "plugin", "package": EVIL_DOC, "version": "1"}
    site = build_site(golden_records(), tmp_path, generated_at=GENERATED_AT, cards=evil).parent
    for path in (site / "methods" / "strategy-lwf.html", site / "methods" / "index.html"):
        page = Page(path)
        assert [s.get("src") for s in page.scripts] == ["../leaderboard.js"]
        assert EVIL_DOC in page.page_text  # shown as text
        html = path.read_text(encoding="utf-8")
        assert "<b>bold</b>" not in html and "&lt;script&gt;" in html


def test_a_card_says_where_the_trials_shown_got_the_code(tmp_path: Path, cards) -> None:
    records = golden_records()
    for record in records:
        record["method"]["origins"] = {
            "strategy": {"origin": "plugin", "package": "cl-extra", "version": "0.3"},
            "framework": {"origin": "built-in", "module": "methods.frameworks.none"},
        }
    site = build_site(records, tmp_path, generated_at=GENERATED_AT, cards=cards).parent
    text = Page(site / "methods" / "strategy-lwf.html").page_text
    assert "Where this site was built: built-in" in text
    assert "The trials shown ran with: plugin cl-extra 0.3." in text
    assert "ran with: built-in." in Page(site / "methods" / "framework-none.html").page_text


def test_cilbench_site_builds_the_cards(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for record in golden_records():
        path = record_path(results, record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
    assert main(["site", "--results", str(results), "--out", str(tmp_path / "s")]) == EXIT_OK
    page = entry_pages(tmp_path / "s")[0]
    assert any(resolve(page, h).name == "strategy-lwf.html" for h in page.links)
