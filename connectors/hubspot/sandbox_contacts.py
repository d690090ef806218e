"""The HubSpot sandbox's CRM contact routes: list, create, search and GDPR-delete contacts.

``GET``/``POST /crm/v3/objects/contacts`` (``after`` cursor, limit <= 100), ``POST .../search`` (filter
groups, one sort, limit <= 200, offset ``after``, at most ``search_cap`` results per query; VENDOR-APIS.md
4.2) and ``POST .../gdpr-delete``, with HubSpot's answer and error shapes over the portal's state.
"""

from __future__ import annotations

import bisect
import json
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.hubspot.sandbox_data import CHANGES, Contact, HubSpotState
from connectors.hubspot.sandbox_requests import (
    contact_properties,
    error_response,
    gdpr_object_id,
    json_body,
    matches,
    parse_int,
    property_names,
    search_request,
    sort_key,
    sortable,
)
from connectors.sandbox_changes import Queries


class Portal(Protocol):
    """What the contact routes read and change: the portal's state and its search result cap."""

    state: HubSpotState
    search_cap: int


class ContactRoutes:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.queries = Queries(CHANGES)  # search results, kept while nothing in the portal changes

    async def listing(self, request: Request) -> Response:
        query = request.query_params
        limit = parse_int(query.get("limit", "10"), "limit", 1, 100)
        after = parse_int(query.get("after", "0"), "after", 0, None)
        names = property_names(query.getlist("properties"))
        # Every contact id in order, kept while the portal does not change: a listing read page by page
        # does not sort every id for every page.
        ids = self.queries.get("listing", lambda: sorted(self.portal.state.contacts))
        start = bisect.bisect_left(ids, after)
        ordered = ids[start : start + limit + 1]
        body: dict[str, Any] = {
            "results": [self.portal.state.contacts[i].to_json(names) for i in ordered[:limit]]
        }
        if len(ordered) > limit:
            following = str(ordered[limit])
            link = f"{request.base_url}crm/v3/objects/contacts?after={following}&limit={limit}"
            body["paging"] = {"next": {"after": following, "link": link}}
        return JSONResponse(body)

    async def create(self, request: Request) -> Response:
        properties = contact_properties(await json_body(request))
        email = properties.get("email")
        existing = self.portal.state.find(email) if email is not None else None
        if existing is not None:
            return error_response(409, f"Contact already exists. Existing ID: {existing.id}")
        contact = self.portal.state.create(email, {k: v for k, v in properties.items() if k != "email"})
        return JSONResponse(contact.to_json(list(properties)), status_code=201)

    async def search(self, request: Request) -> Response:
        body = await json_body(request)
        groups, limit, offset = search_request(body)
        if offset >= self.portal.search_cap:
            return error_response(
                400, f"Search results are limited to {self.portal.search_cap}; 'after' must stay below it."
            )
        name, descending = sort_key(body.get("sorts") or [])

        def ordered() -> list[Contact]:
            hits = [
                c
                for c in self.portal.state.contacts.values()
                if not groups or any(all(matches(c, f) for f in g) for g in groups)
            ]
            hits.sort(key=lambda c: (sortable(c, name), c.id), reverse=descending)
            return hits

        # A search read page by page is run once; its next pages are cut from it until the portal changes.
        hits = self.queries.get(json.dumps([groups, name, descending], sort_keys=True, default=str), ordered)
        reachable = min(len(hits), self.portal.search_cap)
        names = [str(n) for n in body.get("properties") or []]
        out: dict[str, Any] = {
            "total": len(hits),
            "results": [c.to_json(names) for c in hits[offset : min(offset + limit, reachable)]],
        }
        if offset + limit < reachable:
            out["paging"] = {"next": {"after": str(offset + limit)}}
        return JSONResponse(out)

    async def gdpr_delete(self, request: Request) -> Response:
        body = await json_body(request)
        self.portal.state.erase(gdpr_object_id(body), body.get("idProperty"))
        return Response(status_code=204)
