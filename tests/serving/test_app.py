"""The HTTP service end to end on saved models of the tiny shop: every endpoint, errors as 4xx,
the API key, freshness of events without retraining, and atomic reloads."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import KEY, client_for
from tuijian.models.base import Recommender
from tuijian.models.query import Query

USER = "u001"
AUTH = {"X-API-Key": KEY}


def ids(body: dict) -> list[str]:
    return [row["item_id"] for row in body["items"]]


def event(user: str, item: str, n: int, kind: str = "buy") -> dict:
    return {
        "user_id": user,
        "item_id": item,
        "event": kind,
        "timestamp": 1.8e9 + n,
        "event_id": f"{user}-{n}",
    }


def test_health_names_the_model_and_version(knn: TestClient) -> None:
    body = knn.get("/health").json()
    assert body["status"] == "ok" and body["model"] == "itemknn"
    assert (body["n_users"], body["n_items"]) == (300, 150)
    assert len(body["version"]) == 12


def test_user_recommendations_match_the_model(knn: TestClient, shop: Path) -> None:
    body = knn.get(f"/v1/users/{USER}/recommendations", params={"k": 5}).json()
    model = Recommender.load(shop / "models" / "itemknn")
    (expected,) = model.recommend([USER], 5)
    assert ids(body) == expected.ids.tolist()
    assert [round(r["score"], 4) for r in body["items"]] == [
        round(float(s), 4) for s in expected.scores
    ]
    assert all(r["title"] for r in body["items"])  # titles from the data folder
    assert body["source"].startswith("itemknn@")


def test_exclude_and_category_filter(knn: TestClient, shop: Path) -> None:
    first = ids(knn.get(f"/v1/users/{USER}/recommendations", params={"k": 5}).json())
    body = knn.get(
        f"/v1/users/{USER}/recommendations", params={"k": 5, "exclude": first[:2]}
    ).json()
    assert ids(body)[:3] == first[2:]
    books = knn.get(
        f"/v1/users/{USER}/recommendations", params={"k": 5, "category": "books"}
    ).json()
    import polars as pl

    feats = pl.read_parquet(shop / "data" / "item_features.parquet")
    cats = dict(zip(feats["item_id"].to_list(), feats["categories"].to_list(), strict=True))
    assert len(books["items"]) == 5 and all("books" in cats[i] for i in ids(books))
    missing = knn.get(f"/v1/users/{USER}/recommendations", params={"category": "boats"})
    assert missing.status_code == 404 and "boats" in missing.json()["detail"]


def test_unknown_user_gets_the_flagged_popularity_fallback(knn: TestClient, shop: Path) -> None:
    body = knn.get("/v1/users/nobody/recommendations", params={"k": 3}).json()
    assert body["source"] == "popularity"
    pop = Recommender.load(shop / "models" / "pop").recommend([USER], 3, exclude_seen=False)[0]
    assert ids(body) == pop.ids.tolist()


def test_anonymous_session_with_candidates(knn: TestClient) -> None:
    assert knn.post("/v1/recommendations", json={}).json()["source"] == "popularity"
    body = knn.post("/v1/recommendations", json={"items": ["i003", "i004"], "k": 3}).json()
    assert len(body["items"]) == 3 and not {"i003", "i004"} & set(ids(body))
    assert body["source"].startswith("itemknn@")
    cands = ["i010", "i020", "i030", "i003"]
    body = knn.post(
        "/v1/recommendations", json={"items": ["i003"], "k": 10, "candidates": cands}
    ).json()
    assert set(ids(body)) == {"i010", "i020", "i030"}


def test_similar_items_rank_the_item_s_neighbours(knn: TestClient, shop: Path) -> None:
    body = knn.get("/v1/items/i003/similar", params={"k": 5}).json()
    assert len(body["items"]) == 5 and "i003" not in ids(body)
    model = Recommender.load(shop / "models" / "itemknn")
    sim = model.similarity_[model.items_.index(["i003"])[0]].toarray().ravel()
    best = set(model.items_.id(sim.argsort()[::-1][:5]).tolist()) - {"i003"}
    assert set(ids(body)[:4]) <= best | set(ids(body))  # the neighbours, by similarity
    assert len(set(ids(body)) & best) >= 3


@pytest.mark.parametrize(
    ("method", "url", "json", "status"),
    [
        ("get", "/v1/items/nope/similar", None, 404),
        ("get", f"/v1/users/{USER}/recommendations?k=0", None, 422),
        ("get", f"/v1/users/{USER}/recommendations?k=abc", None, 422),
        ("get", f"/v1/users/{USER}/recommendations?exclude=nope", None, 404),
        ("post", "/v1/recommendations", {"items": ["i003"], "extra": 1}, 422),
        ("post", "/v1/recommendations", {"items": ["nope"]}, 404),
        ("post", "/v1/recommendations", {"user_id": USER, "k": 10_000}, 422),
        ("get", f"/v1/users/{USER}/recommendations/nope/explanation", None, 404),
    ],
)
def test_bad_input_is_a_clear_4xx(
    knn: TestClient, method: str, url: str, json: object, status: int
) -> None:
    response = knn.request(method, url, json=json)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_writes_need_the_api_key(knn: TestClient) -> None:
    body = event(USER, "i003", 0)
    assert knn.post("/v1/events", json=body).status_code == 401
    assert knn.post("/v1/events", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert knn.post("/admin/reload").status_code == 401
    assert knn.post("/v1/events", json=body, headers=AUTH).status_code == 200


def test_writes_are_refused_without_a_configured_key(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUIJIAN_API_KEY", raising=False)
    for client in client_for(shop / "models" / "itemknn", api_key=None):
        response = client.post("/v1/events", json=event(USER, "i003", 0), headers=AUTH)
        assert response.status_code == 401 and "TUIJIAN_API_KEY" in response.json()["detail"]


def test_body_over_the_limit_is_413(shop: Path) -> None:
    for client in client_for(shop / "models" / "itemknn", max_body=2000):
        batch = {"events": [event(USER, "i003", n) for n in range(100)]}
        response = client.post("/v1/events", json=batch, headers=AUTH)
        assert response.status_code == 413
        assert (
            client.post("/v1/events", json=event(USER, "i003", 0), headers=AUTH).status_code == 200
        )


def test_events_are_idempotent_by_event_id(knn: TestClient) -> None:
    batch = {"events": [event(USER, "i003", n) for n in range(3)]}
    assert knn.post("/v1/events", json=batch, headers=AUTH).json() == {"received": 3, "stored": 3}
    assert knn.post("/v1/events", json=batch, headers=AUTH).json() == {"received": 3, "stored": 0}


@pytest.mark.parametrize("name", ["itemknn", "als", "sasrec"])
def test_a_stored_event_changes_the_next_answer(shop: Path, name: str) -> None:
    """History-native (item-kNN), fold-in (ALS) and sequence (SASRec: the event is the latest
    step): the item bought is excluded as seen and the next list is the model's answer for the
    training history plus that item."""
    model = Recommender.load(shop / "models" / name)
    for client in client_for(shop / "models" / name):
        url = f"/v1/users/{USER}/recommendations"
        before = ids(client.get(url, params={"k": 10}).json())
        bought = before[0]
        assert (
            client.post("/v1/events", json=event(USER, bought, 1), headers=AUTH).status_code == 200
        )
        after = client.get(url, params={"k": 10}).json()
        assert bought not in ids(after)
        (expected,) = model.recommend([Query(user_id=USER, items=[bought], weights=[5.0])], 10)
        assert ids(after) == expected.ids.tolist()
        assert ids(after) != before[1:]  # rescored with the new item, not only shifted
        # an anonymous visitor's events make a history of their own
        client.post("/v1/events", json=event("visitor", bought, 2), headers=AUTH)
        fresh = client.get("/v1/users/visitor/recommendations").json()
        assert fresh["source"].startswith(f"{name}@") and bought not in ids(fresh)


def test_metrics_count_routes_events_and_the_model(knn: TestClient) -> None:
    knn.get(f"/v1/users/{USER}/recommendations")
    knn.get("/v1/items/nope/similar")
    knn.post(
        "/v1/events",
        json={"events": [event(USER, "i003", 5), event(USER, "i004", 6)]},
        headers=AUTH,
    )
    text = knn.get("/metrics").text
    route = 'route="/v1/users/{user_id}/recommendations"'
    assert f'tuijian_requests_total{{method="GET",{route},status="200"}} 1.0' in text
    assert 'route="/v1/items/{item_id}/similar",status="404"} 1.0' in text
    assert (
        'tuijian_request_seconds_bucket{le="0.005",method="GET",route="/v1/users/{user_id}/recommendations"}'
        in text
    )
    assert "tuijian_events_stored_total 2.0" in text
    assert 'tuijian_model_info{model="itemknn",version="' in text


def test_reload_swaps_in_the_new_version_and_keeps_the_old_on_failure(
    shop: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "served"
    shutil.copytree(shop / "models" / "itemknn", folder)
    for client in client_for(folder):
        old = client.get("/health").json()["version"]
        shutil.rmtree(folder)
        shutil.copytree(shop / "models" / "ease", folder)
        body = client.post("/admin/reload", headers=AUTH).json()
        assert body["previous"] == f"itemknn@{old}" and body["current"].startswith("ease@")
        assert client.get(f"/v1/users/{USER}/recommendations").json()["source"] == body["current"]
        (folder / "state.npz").write_bytes(b"broken")
        failed = client.post("/admin/reload", headers=AUTH)
        assert failed.status_code == 409 and "still serving ease@" in failed.json()["detail"]
        assert client.get("/health").json()["model"] == "ease"  # the old version still answers


def test_a_rewritten_model_folder_is_swapped_in_by_the_watcher(shop: Path, tmp_path: Path) -> None:
    folder = tmp_path / "served"
    shutil.copytree(shop / "models" / "itemknn", folder)
    for client in client_for(folder, watch_seconds=0.05):
        assert client.get("/health").json()["model"] == "itemknn"
        staged = tmp_path / "staged"
        shutil.copytree(shop / "models" / "ease", staged)
        shutil.rmtree(folder)
        staged.rename(folder)  # as a retrain replaces the folder
        deadline = time.monotonic() + 20
        while client.get("/health").json()["model"] != "ease" and time.monotonic() < deadline:
            time.sleep(0.05)
        health = client.get("/health").json()
        assert health["model"] == "ease"
        (folder / "state.npz").write_bytes(b"broken")
        time.sleep(0.5)
        assert client.get("/health").json() == health  # a folder that does not load is skipped


def test_users_and_history_list_what_the_service_counts(knn: TestClient, shop: Path) -> None:
    model = Recommender.load(shop / "models" / "itemknn")
    listed = knn.get("/v1/users", params={"limit": 5}).json()
    assert listed == {"users": model.users_.ids[:5].tolist(), "n_users": len(model.users_)}
    row = model.user_history(model.users_.index([USER]))
    knn.post("/v1/events", json=event(USER, "i149", 7, "cart"), headers=AUTH)
    history = knn.get(f"/v1/users/{USER}/history").json()
    assert history["known"] and len(history["items"]) == row.nnz + 1
    trained = history["items"][:-1]
    assert {i["item_id"] for i in trained} == set(model.items_.id(row.indices).tolist())
    assert [i["weight"] for i in trained] == sorted(row.data.tolist(), reverse=True)
    assert history["items"][-1] | {"title": None} == {
        "item_id": "i149",
        "title": None,
        "weight": 3.0,
        "event": "cart",
        "timestamp": 1.8e9 + 7,
    }
    assert knn.get(f"/v1/users/{USER}/history", params={"n": 1}).json()["items"][0]["item_id"] == (
        "i149"
    )
    nobody = knn.get("/v1/users/nobody/history").json()
    assert nobody == {"user_id": "nobody", "known": False, "items": []}


def test_the_web_page_is_served(knn: TestClient) -> None:
    page = knn.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="recs"' in page.text and "/v1/events" in page.text
