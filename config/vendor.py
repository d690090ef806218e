"""What every vendor's settings share: a connector is enabled exactly when its credentials are set."""

from __future__ import annotations

import hashlib
import json
from typing import ClassVar

from pydantic import BaseModel, SecretStr


class VendorSettings(BaseModel):
    name: ClassVar[str]
    required: ClassVar[tuple[str, ...]]
    # The settings that decide what a pull reads or what a vendor record is read as (the purpose mapping,
    # the audience or shop, how a state is interpreted). Records unchanged since a stream's cursor are not
    # read again, so a run after a change of any of these reads the vendor in full (``pull_fingerprint``).
    # Tuning (page sizes, rate limits), addresses of the same account and secrets stay out.
    read_as: ClassVar[tuple[str, ...]]
    # How the Art. 30 export (R36) names the vendor and what it is to the controller.
    title: ClassVar[str]
    kind: ClassVar[str]

    def missing(self) -> list[str]:
        """Env variables that must still be set to enable this connector."""
        out = []
        for field in self.required:
            value = getattr(self, field)
            if (
                value is None
                or (isinstance(value, SecretStr) and not value.get_secret_value())
                or value == ""
            ):
                out.append(f"SYNC_{self.name.upper()}__{field.upper()}")
        return out

    def enabled(self) -> bool:
        return not self.missing()

    def effective_base_url(self) -> str | None:
        raise NotImplementedError

    def pull_fingerprint(self) -> str:
        """A stable digest of the ``read_as`` settings: equal exactly when they are equal, in any process.

        Only the digest is stored (beside the cursors), never the settings; a secret is refused outright,
        so that no credential, nor a digest of one, ever leaves the process this way.
        """
        values: dict[str, object] = {}
        for field in self.read_as:
            value = getattr(self, field)
            if isinstance(value, SecretStr):
                raise TypeError(f"{self.name}.{field} is a secret: it cannot be part of a pull fingerprint")
            values[field] = value
        text = json.dumps({"vendor": self.name, **values}, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
