"""The Klaviyo sandbox and connector together: over real HTTP, against the official spec and SDK."""

from __future__ import annotations

import httpx

from connectors.base import Action, Change, ContactRecord, GlobalState, Outcome, Page, Status
from connectors.klaviyo.connector import KlaviyoConnector
from connectors.klaviyo.sandbox import KlaviyoSandbox
from connectors.sandbox import served
from tests.unit.connectors.klaviyo_support import (
    HEADERS,
    START,
    Sleeps,
    closing,
    connector,
    get,
    people,
    pull_all,
    records,
    response_schema,
    retry_policy,
    run,
    sandbox,
    send,
    settings_for,
)


def test_pull_and_push_over_real_http_round_trip() -> None:
    box = sandbox()
    emails = people(box, 5)
    with served(box.app) as url:
        conn = KlaviyoConnector.from_settings(
            settings_for(box, url, page_size=2), retry=retry_policy(Sleeps()), clock=box.clock.now
        )

        async def scenario() -> tuple[list, list, list]:  # type: ignore[type-arg]
            box.clock.advance(1)  # the run starts after the second the people were written in
            first = await pull_all(conn)
            box.clock.advance(60)
            results = await conn.push(
                [
                    Change("w1", "klaviyo", emails[0], Action.UNSUBSCRIBE, "newsletter"),
                    Change("w2", "klaviyo", emails[1], Action.UNSUBSCRIBE, "promotions"),
                    Change(
                        "g1", "klaviyo", "new@example.com", Action.SUBSCRIBE, "newsletter", consent_at=START
                    ),
                ]
            )
            second = await pull_all(conn, first[-1].checkpoint)
            return first, results, second

        first, results, second = run(closing(conn, scenario()))
    assert sorted(r.email for r in records(first)) == emails
    assert len(first) == 3
    assert first[-1].final
    assert {r.key: (r.outcome, r.verify_on_pull) for r in results} == {
        "w1": (Outcome.ACCEPTED, True),
        "w2": (Outcome.ACCEPTED, True),
        "g1": (Outcome.ACCEPTED, True),
    }
    seen = {r.email: r for r in records(second)}
    assert set(seen) == {emails[0], emails[1], "new@example.com"}  # only what changed
    assert seen[emails[0]].status_of("newsletter") is Status.UNSUBSCRIBED
    assert seen[emails[1]].status_of("promotions") is Status.NOT_SUBSCRIBED
    assert seen[emails[1]].status_of("newsletter") is Status.SUBSCRIBED  # the list exit was not global
    assert seen["new@example.com"].status_of("newsletter") is Status.SUBSCRIBED
    assert seen["new@example.com"].evidence is not None
    assert seen["new@example.com"].evidence.consent_at == START


def test_withdrawing_a_list_purpose_leaves_the_list_and_never_unsubscribes_globally() -> None:
    box = sandbox()
    box.add_contact("outsider@example.com", {"newsletter": Status.SUBSCRIBED})  # not in the promotions list
    conn = connector(box)
    results = run(
        closing(
            conn,
            conn.push([Change("k", "klaviyo", "outsider@example.com", Action.UNSUBSCRIBE, "promotions")]),
        )
    )
    assert results[0].outcome is Outcome.ACCEPTED
    assert box.status("outsider@example.com", "newsletter") is Status.SUBSCRIBED
    assert not any(path.endswith("bulk-delete-jobs") for _, path in box.requests)


def test_sandbox_unsubscribe_job_with_a_list_unsubscribes_globally_a_profile_not_in_that_list() -> None:
    box = sandbox()
    box.add_contact("outsider@example.com", {"newsletter": Status.SUBSCRIBED})
    body = {
        "data": {
            "type": "profile-subscription-bulk-delete-job",
            "attributes": {
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "attributes": {
                                "email": "outsider@example.com",
                                "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}},
                            },
                        }
                    ]
                }
            },
            "relationships": {"list": {"data": {"type": "list", "id": "PrOm01"}}},
        }
    }
    response = send(box, "POST", "/api/profile-subscription-bulk-delete-jobs", json=body)
    assert response.status_code == 202
    assert box.status("outsider@example.com", "newsletter") is Status.UNSUBSCRIBED


def test_missing_revision_header_gets_klaviyos_400_error_document() -> None:
    response = get(sandbox(), "/api/profiles", headers={"Authorization": HEADERS["Authorization"]})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["source"] == {"parameter": "revision"}
    response_schema("/api/profiles", "get", "4XX").validate(response.json())


def test_bad_api_key_gets_401_error_document() -> None:
    response = get(
        sandbox(), "/api/profiles", headers={**HEADERS, "Authorization": "Klaviyo-API-Key pk_wrong"}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"
    response_schema("/api/profiles", "get", "4XX").validate(response.json())


def test_page_size_above_100_is_refused() -> None:
    response = get(sandbox(), "/api/profiles", **{"page[size]": "101"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "page[size]"}


def test_filter_on_a_field_klaviyo_does_not_allow_is_refused() -> None:
    response = get(sandbox(), "/api/profiles", filter="equals(first_name,'Jan')")
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "filter"}


def test_repeated_push_creates_no_duplicate_profiles() -> None:
    box = sandbox()
    conn = connector(box)
    change = Change("k", "klaviyo", "Twice@Example.com", Action.SUBSCRIBE, "newsletter", consent_at=START)

    async def scenario() -> list:  # type: ignore[type-arg]
        await conn.push([change])
        await conn.push([change])
        return records(await pull_all(conn))

    pulled = run(closing(conn, scenario()))
    assert [r.email for r in pulled] == ["twice@example.com"]
    assert len(box.profiles) == 1


def test_burst_limit_answers_429_with_retry_after_and_other_answers_carry_ratelimit_headers() -> None:
    box = sandbox()
    box.limits.enabled = True
    box.limits.ticks = lambda: 1000.25  # every request inside one burst window
    ok = get(box, "/api/profiles")
    assert ok.status_code == 200
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(ok.headers)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=box.app), base_url="http://k"
        ) as client:
            return [await client.get("/api/profiles", headers=HEADERS) for _ in range(80)]

    responses = run(burst())
    limited = [r for r in responses if r.status_code == 429]
    assert len(limited) == 80 - 74  # 75 per second, one already spent above
    assert "retry-after" in limited[0].headers
    assert "ratelimit-limit" not in limited[0].headers
    assert limited[0].json()["errors"][0]["code"] == "throttled"


def test_spam_complaint_and_hard_bounce_arrive_as_account_wide_facts() -> None:
    box = sandbox()
    box.add_contact(
        "complainer@example.com", {"newsletter": Status.SUBSCRIBED}, suppression={"SPAM_COMPLAINT": START}
    )
    box.add_contact(
        "bouncer@example.com", {"newsletter": Status.SUBSCRIBED}, suppression={"HARD_BOUNCE": START}
    )
    conn = connector(box)
    pulled = {r.email: r for r in records(run(closing(conn, pull_all(conn))))}
    assert pulled["complainer@example.com"].global_state is GlobalState.COMPLAINED  # R18
    assert pulled["bouncer@example.com"].global_state is GlobalState.BOUNCED


def test_joining_a_list_creates_a_bare_profile_for_an_unknown_address_without_writing_consent() -> None:
    box = sandbox()
    conn = connector(box)
    results = run(
        closing(
            conn, conn.push([Change("k", "klaviyo", "fresh@example.com", Action.SUBSCRIBE, "promotions")])
        )
    )
    assert results[0].outcome is Outcome.ACCEPTED
    assert box.status("fresh@example.com", "promotions") is Status.SUBSCRIBED
    assert box.status("fresh@example.com", "newsletter") is Status.NOT_SUBSCRIBED  # consent untouched
    assert ("POST", "/api/profiles") in box.requests


def test_withdrawals_reach_klaviyo_before_grants_in_one_push() -> None:
    box = sandbox()
    box.add_contact("member@example.com", {"promotions": Status.SUBSCRIBED})
    conn = connector(box)
    changes = [
        Change("g", "klaviyo", "new@example.com", Action.SUBSCRIBE, "newsletter", consent_at=START),
        Change("w", "klaviyo", "member@example.com", Action.UNSUBSCRIBE, "promotions"),
    ]
    run(closing(conn, conn.push(changes)))
    writes = [path for method, path in box.requests if method != "GET"]
    assert writes == [
        "/api/lists/PrOm01/relationships/profiles",
        "/api/profile-subscription-bulk-create-jobs",
    ]


def test_list_membership_is_read_for_addresses_with_quotes() -> None:
    box = sandbox()
    box.add_contact("o'brien@example.com", {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    conn = connector(box)
    (record,) = records(run(closing(conn, pull_all(conn))))
    assert record.email == "o'brien@example.com"
    assert record.status_of("promotions") is Status.SUBSCRIBED


async def pull_streams(conn: KlaviyoConnector, cursors: dict[str, str]) -> list[ContactRecord]:
    """Every stream in the order the capabilities give, as a run pulls them; ``cursors`` move on."""
    found: list[ContactRecord] = []
    for info in conn.capabilities().streams:
        async for page in conn.pull(info.name, cursors.get(info.name)):
            found += records([page])
            if page.checkpoint is not None:
                cursors[info.name] = page.checkpoint
    return found


def joining_shop(emails: list[str], *, join_moves_updated: bool) -> tuple[KlaviyoSandbox, KlaviyoConnector]:
    box = sandbox()
    box.audience.list_change_moves_updated = join_moves_updated
    for email in emails:
        box.add_contact(email, {"newsletter": Status.SUBSCRIBED})
    return box, connector(box)


async def pulled_then_joined(
    box: KlaviyoSandbox, conn: KlaviyoConnector, cursors: dict[str, str], joiners: list[str]
) -> list[ContactRecord]:
    """A first pull of every stream; 30 s later ``joiners`` join the promotions list; the next pull starts
    in a later second than the joins. Returns what the first pull read."""
    box.clock.advance(1)  # the run starts after the second the people were written in
    first = await pull_streams(conn, cursors)
    box.clock.advance(30)
    await conn.push(
        [Change(f"j{i}", "klaviyo", e, Action.SUBSCRIBE, "promotions") for i, e in enumerate(joiners)]
    )
    box.clock.advance(1)
    return first


def test_incremental_pull_sees_a_list_join_that_did_not_move_updated() -> None:
    box, conn = joining_shop(["stays@example.com", "joins@example.com"], join_moves_updated=False)
    cursors: dict[str, str] = {}

    async def scenario() -> tuple[list[ContactRecord], list[ContactRecord], list[ContactRecord], int]:
        first = await pulled_then_joined(box, conn, cursors, ["joins@example.com"])
        before = len(box.requests)
        second = await pull_streams(conn, cursors)
        requests = len(box.requests) - before
        third = await pull_streams(conn, cursors)
        return first, second, third, requests

    first, second, third, requests = run(closing(conn, scenario()))
    assert {r.email for r in first} == {"stays@example.com", "joins@example.com"}
    assert [(r.email, r.status_of("promotions")) for r in second] == [
        ("joins@example.com", Status.SUBSCRIBED)
    ]
    # Per stream one request (profiles, and each list's joins), and for the joiner its profile and memberships.
    assert requests == len(conn.capabilities().streams) + 1 + len(conn.purposes.list_purposes())
    assert third == []  # the join moved the watermark: it is not read again


def test_a_join_that_moved_updated_is_read_once_by_the_contacts_stream() -> None:
    box, conn = joining_shop(["stays@example.com", "joins@example.com"], join_moves_updated=True)
    cursors: dict[str, str] = {}

    async def scenario() -> list[Page]:
        await pulled_then_joined(box, conn, cursors, ["joins@example.com"])
        pages = []
        for info in conn.capabilities().streams:
            pages += [page async for page in conn.pull(info.name, cursors.get(info.name))]
        return pages

    pages = run(closing(conn, scenario()))
    read = [(page.stream, r.email, r.status_of("promotions")) for page in pages for r in records([page])]
    assert read == [("contacts", "joins@example.com", Status.SUBSCRIBED)]


def test_a_join_feed_reads_more_joiners_than_one_membership_filter_takes() -> None:
    emails = [f"joiner{i:03d}@example.com" for i in range(130)]
    box, conn = joining_shop(emails, join_moves_updated=False)
    cursors: dict[str, str] = {}

    async def scenario() -> list[Page]:
        await pulled_then_joined(box, conn, cursors, emails)
        return [page async for page in conn.pull("joins:promotions", cursors["joins:promotions"])]

    pages = run(closing(conn, scenario()))
    assert sorted(r.email for r in records(pages)) == emails
    assert all(page.errors == () for page in pages)
    assert [page.checkpoint is not None for page in pages] == [False, True]  # the cursor moves at the end


def test_list_call_refused_for_a_stale_profile_id_goes_through_for_the_others() -> None:
    box = sandbox()
    first = box.add_contact("one@example.com", {"promotions": Status.SUBSCRIBED})
    second = box.add_contact("two@example.com", {"promotions": Status.SUBSCRIBED})
    conn = connector(box)
    changes = [
        Change("a", "klaviyo", "one@example.com", Action.UNSUBSCRIBE, "promotions", first),
        Change("b", "klaviyo", "gone@example.com", Action.UNSUBSCRIBE, "promotions", "01DELETEDPROFILE"),
        Change("c", "klaviyo", "two@example.com", Action.UNSUBSCRIBE, "promotions", second),
    ]
    results = {r.key: r for r in run(closing(conn, conn.push(changes)))}
    assert results["b"].outcome is Outcome.REJECTED
    assert "01DELETEDPROFILE" in (results["b"].reason or "")
    assert (results["a"].outcome, results["c"].outcome) == (Outcome.ACCEPTED, Outcome.ACCEPTED)
    assert box.status("one@example.com", "promotions") is Status.NOT_SUBSCRIBED
    assert box.status("two@example.com", "promotions") is Status.NOT_SUBSCRIBED


def test_pull_over_real_http_survives_dropped_connections_and_injected_errors() -> None:
    box = sandbox()
    emails = people(box, 9)
    box.faults.set_all(0.3)
    with served(box.app) as url:
        conn = KlaviyoConnector.from_settings(
            settings_for(box, url, page_size=2), retry=retry_policy(Sleeps(), attempts=15)
        )
        pulled = records(run(closing(conn, pull_all(conn))))
    assert sorted(r.email for r in pulled) == emails
    assert box.faults.injected.get("drop", 0) > 0


def test_demo_seed_maps_every_default_purpose_in_the_klaviyo_sandbox() -> None:
    from connectors.seed import demo_people, seed

    box = sandbox()
    contacts = demo_people()
    assert seed(box, contacts) == []
    for contact in contacts[:5]:
        for purpose, status in contact.statuses.items():
            expected = (
                Status.NOT_SUBSCRIBED if status is Status.PENDING else status
            )  # Klaviyo shows no pending
            assert box.status(contact.email, purpose) is expected


def test_profiles_are_found_by_address_in_any_case_and_forgotten_when_erased() -> None:
    box = sandbox()
    now = box.clock.now()
    made = box.audience.create("Ann@Example.nl", now)
    assert box.audience.find(" ann@example.NL ") is made
    assert box.audience.find_or_create("ANN@example.nl", now) is made
    box.audience.erase("ann@example.nl", None)
    assert box.audience.find("Ann@Example.nl") is None
    assert box.audience.find_or_create("ann@example.nl", now) is not made, "an erased address starts afresh"
