"""Which records each kind of DNS change touches, as IAM's Route 53 condition keys name them."""

from __future__ import annotations

import pytest

from dcwatch.config import load_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.runtime import Settings
from dcwatch.zones import (
    DELETE,
    UPSERT,
    decode_zone_ids,
    dns_zones,
    drill_records,
    encode_zone_ids,
    normalized_name,
    production_records,
    scope,
)


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("shop.hosting.example.", "shop.hosting.example"),
        ("Shop.Hosting.Example.", "shop.hosting.example"),
        ("_sip._tcp.hosting.example", "_sip._tcp.hosting.example"),
        ("*.hosting.example.", "\\052.hosting.example"),
    ],
)
def test_record_names_are_normalized_as_route53s_condition_key_holds_them(name: str, normalized: str):
    assert normalized_name(name) == normalized


def test_production_and_drill_records_are_scoped_apart_with_their_own_actions():
    config = load_config(DEMO_CONFIG)
    production = scope(production_records(config), [UPSERT])
    drill = scope(drill_records(config), [UPSERT, DELETE])
    assert production is not None and drill is not None
    assert set(production.names) == {s.dns.name.rstrip(".") for s in config.services}
    assert set(drill.names) == {d.dns.name.rstrip(".") for d in config.drill.services}  # type: ignore[union-attr]
    assert not set(production.names) & set(drill.names), "a drill never touches production"
    assert (production.actions, drill.actions) == ((UPSERT,), (DELETE, UPSERT))
    assert dns_zones(config) == ["hosting.example."]


def test_without_a_drill_there_is_nothing_of_a_drill_to_grant():
    config = load_config(DEMO_CONFIG).model_copy(update={"drill": None})
    assert scope(drill_records(config), [UPSERT, DELETE]) is None


def test_functions_read_the_zone_ids_the_stack_gives_them():
    given = encode_zone_ids({"Hosting.Example": "/hostedzone/Z1"})
    settings = Settings.from_env({"DCWATCH_CONFIG": "c.yaml", "DCWATCH_HOSTED_ZONE_IDS": given})
    assert settings.hosted_zone_ids == {"hosting.example.": "Z1"}
    assert Settings.from_env({"DCWATCH_CONFIG": "c.yaml"}).hosted_zone_ids == {}


@pytest.mark.parametrize("text", ["{not json", '["Z1"]', '{"hosting.example.": 1}'])
def test_bad_zone_ids_name_the_variable(text: str):
    with pytest.raises(ValueError, match="DCWATCH_HOSTED_ZONE_IDS"):
        decode_zone_ids(text)
