"""Logs: JSON off a terminal, e-mail addresses masked by default, secrets never written."""

from __future__ import annotations

import io
import json

from pydantic import SecretStr

from sync_worker.logs import configure_logging, get_logger


def _log_line(show_emails: bool = False, **fields: object) -> dict[str, object]:
    stream = io.StringIO()
    configure_logging("json", "info", show_emails=show_emails, stream=stream)
    get_logger(run_id="r1").info("pushed", **fields)
    return json.loads(stream.getvalue())  # type: ignore[no-any-return]


def test_email_addresses_are_masked_by_default() -> None:
    line = _log_line(contact="jan.jansen@example.com", note="mail to piet@voorbeeld.nl failed")
    assert line["contact"] == "j***@example.com"
    assert line["note"] == "mail to p***@voorbeeld.nl failed"
    assert "jan.jansen" not in json.dumps(line)


def test_an_invalid_address_quoted_in_an_error_is_masked_too() -> None:
    line = _log_line(error="invalid e-mail address: jan@localhost")
    assert line["error"] == "invalid e-mail address: j***@localhost"


def test_operator_can_opt_in_to_full_addresses() -> None:
    assert _log_line(show_emails=True, contact="jan@example.com")["contact"] == "jan@example.com"


def test_secrets_are_never_logged() -> None:
    line = _log_line(
        api_key="abc123-us1",
        headers={"Authorization": "Bearer pat-secret", "Accept": "application/json"},
        settings={"token": SecretStr("tok"), "nested": [{"client_secret": "cs"}]},
        value=SecretStr("hidden"),
    )
    text = json.dumps(line)
    for secret in ("abc123", "pat-secret", 'tok"', 'cs"', "hidden"):
        assert secret not in text
    assert line["headers"] == {"Authorization": "[redacted]", "Accept": "application/json"}
    assert line["run_id"] == "r1"
