"""Livepush simulator: streams, the account's destinations and recordings, and the scheduler playlist."""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_sim_support import LIVEPUSH, send

from tests.conftest import Sim

STREAMS = f"{LIVEPUSH}/streams"
LIST_ITEM_FIELDS = ["id", "metadata", "createdAt", "isDisabled", "config", "destinations", "zone"]
DETAIL_FIELDS = [
    "id",
    "chatId",
    "embedId",
    "createdAt",
    "metadata",
    "config",
    "destinations",
    "zone",
    "unsafeContent",
    "hasValidated",
]
ZONE_FIELDS = ["id", "name", "category", "host", "isPublic", "isDefault"]


async def new_stream(sim: Sim, category: str = "simulcast", name: str = "Main") -> dict[str, Any]:
    answer = await send(sim, "POST", STREAMS, json={"category": category, "name": name})
    assert answer.status == 201, answer.text
    return answer.body


async def test_create_answers_the_created_shape(sim: Sim) -> None:
    created = await new_stream(sim, name="Luke Skywalker Apricot Fascinating")
    assert list(created) == DETAIL_FIELDS
    assert re.fullmatch(r"st_[a-z0-9]{13}", created["id"])
    assert re.fullmatch(r"mc_[a-z0-9]{12}", created["chatId"])
    assert re.fullmatch(r"em_[a-z0-9]{12}", created["embedId"])
    assert created["metadata"] == {"name": "Luke Skywalker Apricot Fascinating", "category": "simulcast"}
    assert created["config"] == {"pullUrlMaxRetry": 5, "recordingTier": "rise"}
    assert created["destinations"] == []
    assert isinstance(created["zone"], str) and created["zone"].startswith("zn_")


async def test_each_category_gets_its_default_zone(sim: Sim) -> None:
    simulcast = await new_stream(sim, "simulcast")
    schedule = await new_stream(sim, "schedule")
    assert simulcast["zone"] != schedule["zone"]
    zone = (await send(sim, "GET", f"{STREAMS}/{schedule['id']}")).body["zone"]
    assert (zone["id"], zone["category"], zone["isDefault"]) == (schedule["zone"], "schedule", True)


async def test_get_shows_the_zone_as_an_object(sim: Sim) -> None:
    created = await new_stream(sim)
    got = await send(sim, "GET", f"{STREAMS}/{created['id']}")
    assert got.status == 200
    assert list(got.body) == DETAIL_FIELDS
    assert list(got.body["zone"]) == ZONE_FIELDS
    assert got.body["zone"]["id"] == created["zone"]
    assert {k: v for k, v in got.body.items() if k != "zone"} == {k: v for k, v in created.items() if k != "zone"}


async def test_mine_lists_items_without_chat_or_embed_ids(sim: Sim) -> None:
    first = await new_stream(sim, name="one")
    second = await new_stream(sim, "schedule", "two")
    listed = await send(sim, "GET", f"{STREAMS}/mine")
    assert listed.status == 200
    assert [item["id"] for item in listed.body] == [first["id"], second["id"]]
    for item in listed.body:
        assert list(item) == LIST_ITEM_FIELDS
        assert item["isDisabled"] is False
        assert list(item["zone"]) == ZONE_FIELDS


async def test_delete_removes_the_stream_and_its_recordings(sim: Sim) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 5, "counts": {"livepush_stream": 6}})
    recordings = (await send(sim, "GET", f"{STREAMS}/me/recordings")).body
    recorded = recordings[0]["stream"]
    deleted = await send(sim, "DELETE", f"{STREAMS}/{recorded}")
    assert (deleted.status, deleted.body) == (200, {"success": True})
    gone = await send(sim, "GET", f"{STREAMS}/{recorded}")
    assert (gone.status, gone.body) == (404, {"message": "Stream not found"})
    assert (await send(sim, "DELETE", f"{STREAMS}/{recorded}")).status == 404
    remaining = {item["id"] for item in (await send(sim, "GET", f"{STREAMS}/mine")).body}
    assert remaining == set(seeded["livepush_stream"]) - {recorded}
    after = (await send(sim, "GET", f"{STREAMS}/me/recordings")).body
    assert all(r["stream"] != recorded for r in after)


async def test_account_lists_are_not_taken_for_stream_ids(sim: Sim) -> None:
    destinations = await send(sim, "GET", f"{STREAMS}/me/destinations")
    assert destinations.status == 200
    assert destinations.body and all(d["id"].startswith("pb_") for d in destinations.body)
    recordings = await send(sim, "GET", f"{STREAMS}/me/recordings")
    assert (recordings.status, recordings.body) == (200, [])
    mine = await send(sim, "GET", f"{STREAMS}/mine")
    assert (mine.status, mine.body) == (200, [])


async def test_set_the_scheduler_playlist(sim: Sim) -> None:
    stream = await new_stream(sim, "schedule")
    path = f"{STREAMS}/{stream['id']}/config/scheduler/playlist"
    answer = await send(sim, "PUT", path, json={"videos": ["vd_1", "vd_2"]})
    assert (answer.status, answer.body) == (200, {"success": True, "videos": ["vd_1", "vd_2"]})
    missing = await send(sim, "PUT", f"{STREAMS}/st_missing/config/scheduler/playlist", json={"videos": []})
    assert missing.status == 404


@pytest.mark.parametrize("body", [{}, {"videos": "vd_1"}, {"videos": [1]}])
async def test_the_playlist_must_be_a_list_of_ids(sim: Sim, body: dict[str, Any]) -> None:
    stream = await new_stream(sim, "schedule")
    answer = await send(sim, "PUT", f"{STREAMS}/{stream['id']}/config/scheduler/playlist", json=body)
    assert answer.status == 400
    assert "videos" in answer.body["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "category"),
        ({"category": "simulcast"}, "name"),
        ({"category": "vod", "name": "x"}, "category"),
    ],
)
async def test_an_invalid_create_is_400_naming_the_field(sim: Sim, body: dict[str, Any], field: str) -> None:
    answer = await send(sim, "POST", STREAMS, json=body)
    assert answer.status == 400
    assert list(answer.body) == ["message"]
    assert field in answer.body["message"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer expired.jwt.token"}])
async def test_missing_or_wrong_token_is_401(sim: Sim, headers: dict[str, str]) -> None:
    for method, path in (("GET", f"{STREAMS}/mine"), ("POST", STREAMS), ("GET", f"{STREAMS}/st_x")):
        answer = await send(sim, method, path, headers=headers, auth=False, json={})
        assert answer.status == 401
        assert list(answer.body) == ["message"]


async def test_an_unknown_route_is_404_with_a_message(sim: Sim) -> None:
    answer = await send(sim, "GET", f"{LIVEPUSH}/videos")
    assert answer.status == 404
    assert list(answer.body) == ["message"]
