"""The README and docs/ say only what is true: every config example validates, every command and make target
shown exists, every link resolves.

A config example is either a whole config (it validates alone), a scenario file (it loads as one), or a
fragment: a list of checks, some sections of a config, or some keys of a service. A fragment is merged into
the whole example of docs/config.md (lists of named items merge by name, `{...}` stands for what is there
already) and the result must validate; a block that shows alternatives (one top-level key given twice) is
merged once per alternative.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcwatch.cli import parser
from dcwatch.config import Config, ConfigError, Service, parse_config
from dcwatch.local.scenario import load_scenario
from dcwatch.recovery.request import parse_request
from tests.topology_configs import readme as config_example

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *(ROOT / d / "README.md" for d in ("events", "scenarios")),
]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
ELSEWHERE = "..."  # `vcenter: {...}`: the part the example does not show


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def blocks(lang: str) -> Iterator[tuple[str, str]]:
    """(`page:line`, text) of every fenced block in the language."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1) == lang:
                yield f"{_id(page)}:{text[: m.start()].count(chr(10)) + 1}", m.group(2)


def prose(page: Path) -> str:
    """The page without its fenced blocks."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Its headings' anchors; a heading given again gets `-1`, `-2`, ... as on GitHub."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in prose(page).splitlines():
        if m := re.match(r"#{1,6} (.*)", line):
            base = slug(m.group(1))
            counts[base] = counts.get(base, 0) + 1
            found.add(base if counts[base] == 1 else f"{base}-{counts[base] - 1}")
    return found


# -- config examples ------------------------------------------------------------------------------------------


def _merge(base: Any, part: Any) -> Any:
    if isinstance(part, dict) and set(part) == {ELSEWHERE}:
        return base
    if isinstance(base, dict) and isinstance(part, dict):
        merged = dict(base)
        for key, value in part.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(part, list) and all(isinstance(i, dict) for i in base + part):
        named = {item.get("name"): n for n, item in enumerate(base) if "name" in item}
        merged_list = list(base)
        for item in part:
            if item.get("name") in named:
                n = named[item["name"]]
                merged_list[n] = _merge(base[n], item)
            else:
                merged_list.append(item)
        return merged_list
    return part


def _alternatives(block: str) -> list[str]:
    """The block's variants: a new one starts where a top-level key comes again."""
    variants: list[list[str]] = [[]]
    keys: set[str] = set()
    for line in block.splitlines():
        if m := re.match(r"([\w-]+):", line):
            if m.group(1) in keys:
                variants.append([])
                keys = set()
            keys.add(m.group(1))
        variants[-1].append(line)
    return ["\n".join(v) for v in variants]


def as_config(doc: Any) -> dict[str, Any]:
    """The whole config a docs example stands for."""
    example = config_example()
    if isinstance(doc, list):  # checks, as a service's site lists them
        service = example["services"][0]
        site = next(iter(service["sites"]))
        return _merge(example, {"services": [{"name": service["name"], "sites": {site: {"checks": doc}}}]})
    if {"name", "sites", "services"} <= set(doc):
        return doc
    if set(doc) <= set(Config.model_fields):
        return _merge(example, doc)
    assert set(doc) <= set(Service.model_fields), f"neither config nor service keys: {sorted(doc)}"
    return _merge(example, {"services": [{"name": example["services"][0]["name"], **doc}]})


def config_examples() -> Iterator[Any]:
    for where, block in blocks("yaml"):
        first = yaml.safe_load(_alternatives(block)[0])
        if isinstance(first, dict) and "steps" in first:
            continue  # a scenario file: test_the_scenario_examples_load_as_scenarios
        for n, variant in enumerate(_alternatives(block)):
            yield pytest.param(yaml.safe_load(variant), id=f"{where}#{n}")


@pytest.mark.parametrize("doc", config_examples())
def test_every_config_example_validates_whole_or_merged_into_the_example_config(doc):
    try:
        parse_config(as_config(doc), "docs example")
    except ConfigError as exc:
        pytest.fail(f"{exc}\n{yaml.safe_dump(doc, sort_keys=False)}")


def test_the_fragments_are_checked_where_they_land():
    """The merge keeps a fragment's values: a wrong value in one would fail the config, not vanish."""
    merged = as_config({"sites": [{"name": "dc-a", "vcenter": {"probe": {"datastore_min_free_pct": 10}}}]})
    assert merged["sites"][0]["vcenter"]["probe"] == {"datastore_min_free_pct": 10}
    assert merged["sites"][0]["vcenter"]["url"] == config_example()["sites"][0]["vcenter"]["url"]
    with pytest.raises(ConfigError, match="datastore_min_free_pct"):
        parse_config(as_config({"sites": [{"name": "dc-a", "vcenter": {"probe": {"datastore_min_free_pct": -1}}}]}))
    with pytest.raises(ConfigError, match="port"):
        parse_config(as_config([{"kind": "tcp", "name": "smtp", "host": "192.0.2.25", "port": 70000}]))


def test_the_scenario_examples_load_as_scenarios(tmp_path):
    scenarios = [(w, b) for w, b in blocks("yaml") if "steps" in (yaml.safe_load(b) or {})]
    assert scenarios, "docs/scenarios.md shows a scenario file"
    for where, block in scenarios:
        path = tmp_path / f"{yaml.safe_load(block)['name']}.yaml"
        path.write_text(block, encoding="utf-8")
        assert load_scenario(path).name == path.stem, where


def test_the_recovery_requests_shown_are_valid_requests_for_the_example_config():
    requests = [json.loads(b) for _, b in blocks("json") if '"mode"' in b]
    assert requests, "docs/recovery.md shows a request"
    config = parse_config(config_example())
    for raw in requests:
        assert parse_request(raw, config).mode == raw["mode"]


# -- commands -------------------------------------------------------------------------------------------------


def commands(program: str) -> Iterator[tuple[str, str]]:
    """(`page`, the words after the program) of every code span and shell line that runs it."""
    pattern = re.compile(rf"^(?:\S*/)?{program} +(\S.*)$")
    shown = [(_id(page), span) for page in PAGES for span in CODE_SPAN.findall(prose(page))]
    shown += [(where.split(":")[0], line) for where, text in blocks("sh") for line in text.splitlines()]
    for page, candidate in shown:
        if m := pattern.match(candidate.replace("\\|", "|").split("#")[0].strip()):
            yield page, m.group(1)


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _choice(word: str) -> bool:
    return re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", word) is not None


def check_command(words: list[str], p: argparse.ArgumentParser, shown: str) -> None:
    """The subcommands (`a|b` for each of them), a positional choice, and every `--option` shown."""
    choices = _subparsers(p)
    if choices:
        assert words and _choice(words[0]), f"`dcwatch {shown}`: which subcommand?"
        for alternative in words[0].split("|"):
            assert alternative in choices, f"`dcwatch {shown}`: no subcommand {alternative!r}"
            check_command(words[1:], choices[alternative], shown)
        return
    positional = [set(a.choices) for a in p._actions if not a.option_strings and a.choices]
    if positional and words and _choice(words[0]):
        assert set(words[0].split("|")) <= positional[0], f"`dcwatch {shown}`: {words[0]} is not a choice"
    flags = {flag for action in p._actions for flag in action.option_strings}
    for word in (w.strip("[]()") for w in words):
        if word.startswith("--"):
            assert word.split("=")[0] in flags, f"`dcwatch {shown}`: no option {word}"


def test_every_dcwatch_command_shown_exists_with_the_options_shown():
    shown = list(commands("dcwatch"))
    assert len(shown) > 20, "the README and docs show the commands"
    cli = parser()
    for page, text in shown:
        check_command([w for w in text.split() if w != "|"], cli, f"{text} ({page})")


@pytest.mark.parametrize(
    "text",
    ["frobnicate", "config frob FILE", "topology --config F --nosuch", "automation maybe --reason R", "approve|frob"],
)
def test_the_command_check_refuses_what_the_cli_does_not_know(text):
    with pytest.raises(AssertionError):
        check_command(text.split(), parser(), text)


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {t for line in re.findall(r"^([\w .$()-]+):(?!=)", makefile, re.M) for t in line.split()}


def test_every_make_target_shown_is_in_the_makefile():
    targets = make_targets()
    shown = [(page, word) for page, text in commands("make") for word in text.split() if "=" not in word]
    assert {"demo", "test"} <= {word for _, word in shown}
    missing = [(page, word) for page, word in shown if word.strip(",`") not in targets]
    assert not missing, f"not in the Makefile: {missing}"


def test_every_python_module_shown_exists():
    shown = [text.split()[0] for _, text in commands("python -m")]
    assert shown, "the docs show `python -m bench...`"
    assert [m for m in shown if importlib.util.find_spec(m) is None] == []


def test_the_readme_has_the_two_commands_on_its_first_screen():
    first_screen = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:25]
    assert any(line.startswith("make demo") for line in first_screen)
    assert any(line.startswith("make test") for line in first_screen)
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 150


# -- links ----------------------------------------------------------------------------------------------------


def test_every_relative_link_reaches_a_file_and_its_heading():
    broken = []
    for page in PAGES:
        for target in LINK.findall(prose(page)):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                broken.append(f"{_id(page)}: {target} (no such file)")
            elif anchor and anchor not in anchors(path):
                broken.append(f"{_id(page)}: {target} (no such heading)")
    assert not broken, broken


def test_the_anchors_are_githubs():
    assert slug("Site agents (self-fencing)") == "site-agents-self-fencing"
    assert slug("Starting a failover, failback or drill from the console") == (
        "starting-a-failover-failback-or-drill-from-the-console"
    )
    assert slug("Evaluation: what a probe round costs") == "evaluation-what-a-probe-round-costs"
