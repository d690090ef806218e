"""Reading HubSpot subscription statuses for a page of contacts: in batches, or one contact at a time.

The v4 batch status endpoints need Marketing Hub Enterprise; other portals answer them 403. Unless config
insists on batches, the first such 403 switches this reader (and the connector's writes) to the
per-contact endpoints for the rest of the connector's life.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from connectors.errors import AuthError, NotFoundError, RejectedError
from connectors.hubspot.client import JSON, HubSpotClient
from connectors.hubspot.mapping import error_subjects, opt_out_times, statuses_by_email

BatchCall = Callable[[list[str]], Awaitable[JSON]]
SingleCall = Callable[[str], Awaitable[JSON]]


class StatusReader:
    def __init__(self, client: HubSpotClient, batch_size: int, batch_statuses: bool | None, log: Any) -> None:
        self.client = client
        self.batch_size = batch_size
        self.batch_statuses = batch_statuses  # None: try, fall back on 403; True: must; False: never
        self.refused = False
        self.log = log

    async def batch(self, call: Callable[[], Awaitable[JSON]]) -> JSON | None:
        """A batch status call, or None when this portal may not use them: the caller then goes per contact."""
        if self.batch_statuses is False or self.refused:
            return None
        try:
            return await call()
        except AuthError as error:
            if error.status != 403 or self.batch_statuses is True:
                raise
            self.refused = True
            self.log.warning("hubspot.batch_statuses_unavailable", reason=str(error))
            return None

    async def statuses(
        self, emails: Sequence[str], *, per_contact: bool = False
    ) -> tuple[dict[str, list[Mapping[str, Any]]], dict[str, str]]:
        """Per address: its subscription statuses, or HubSpot's reason for having none.

        ``per_contact``: straight to the per-contact endpoints (every plan has them), for a few addresses.
        """
        found: dict[str, list[Mapping[str, Any]]] = {}
        failed: dict[str, str] = {}
        bodies = await self._read(
            emails, self.client.read_statuses, self.client.read_status, "statuses", per_contact
        )
        for body in bodies:
            found.update(statuses_by_email(body))
            for (email, _), message in error_subjects(body.get("errors") or []).items():
                failed[email] = message
        return found, failed

    async def opt_outs(self, emails: Sequence[str], *, per_contact: bool = False) -> dict[str, datetime]:
        """When each address opted out of all email (R17), where HubSpot says so."""
        bodies = await self._read(
            emails, self.client.read_wide_statuses, self.client.read_wide_status, "wideStatuses", per_contact
        )
        return {email: moment for body in bodies for email, moment in opt_out_times(body).items()}

    async def _read(
        self, emails: Sequence[str], batch: BatchCall, single: SingleCall, field: str, per_contact: bool
    ) -> list[JSON]:
        if not emails:
            return []
        size = self.batch_size
        chunks = [list(emails[i : i + size]) for i in range(0, len(emails), size)]
        first = None if per_contact else await self.batch(lambda: batch(chunks[0]))
        if first is not None:
            return [first, *await asyncio.gather(*(batch(chunk) for chunk in chunks[1:]))]
        return list(await asyncio.gather(*(self._one(email, single, field) for email in emails)))

    @staticmethod
    async def _one(email: str, single: SingleCall, field: str) -> JSON:
        """One contact's answer in the batch answer's shape; an unknown address becomes an item error."""
        try:
            body = await single(email)
        except (NotFoundError, RejectedError) as error:
            context = {"subscriberIdString": [email]}
            return {
                "results": [],
                "errors": [{"category": "OBJECT_NOT_FOUND", "message": str(error), "context": context}],
            }
        return {"results": [{"subscriberIdString": email, field: body.get("results") or []}]}
