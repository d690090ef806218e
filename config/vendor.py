"""What every vendor's settings share: a connector is enabled exactly when its credentials are set."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, SecretStr


class VendorSettings(BaseModel):
    name: ClassVar[str]
    required: ClassVar[tuple[str, ...]]
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
