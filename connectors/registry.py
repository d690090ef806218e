"""Where each vendor's connector and sandbox live. Imported lazily: a run loads only enabled vendors.

A connector class offers ``from_settings(settings, *, transport=None, retry=None, clock=None)``
(``settings``: the root Settings or the vendor's model; ``clock``: ``connectors.assembly.ClockSource``);
a sandbox class is built with no arguments and satisfies ``connectors.sandbox.Sandbox``.
"""

from __future__ import annotations

import importlib
from typing import Any

VENDORS = ("mailchimp", "shopify", "klaviyo", "hubspot")

CONNECTORS = {name: f"connectors.{name}.connector:{name.capitalize()}Connector" for name in VENDORS}
SANDBOXES = {name: f"connectors.{name}.sandbox:{name.capitalize()}Sandbox" for name in VENDORS}
CONNECTORS["hubspot"] = "connectors.hubspot.connector:HubSpotConnector"
SANDBOXES["hubspot"] = "connectors.hubspot.sandbox:HubSpotSandbox"


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def connector_class(name: str) -> Any:
    if name not in CONNECTORS:
        raise KeyError(f"unknown connector {name!r}; known: {', '.join(VENDORS)}")
    return _load(CONNECTORS[name])


def sandbox_class(name: str) -> Any:
    if name not in SANDBOXES:
        raise KeyError(f"unknown sandbox {name!r}; known: {', '.join(VENDORS)}")
    return _load(SANDBOXES[name])
