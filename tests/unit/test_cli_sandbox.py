"""``sync-worker sandbox``: serves a vendor sandbox in a real process and prints how to reach it."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from connectors.base import Status
from connectors.mailchimp.sandbox import MailchimpSandbox
from connectors.sandbox import free_port
from connectors.seed import demo_people, read_seed_file, seed
from sync_worker.cli import app


@pytest.mark.slow
def test_sandbox_command_serves_seeded_mailchimp_on_the_given_port() -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "sync_worker",
        "sandbox",
        "mailchimp",
        "--port",
        str(port),
        "--seed",
        "demo",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        assert "36 contacts seeded" in banner
        env = {}
        while len(env) < 4:
            line = process.stdout.readline()
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").strip().partition("=")
                env[key] = shlex.split(value)[0]
        assert env["SYNC_MAILCHIMP__BASE_URL"] == f"http://127.0.0.1:{port}/3.0"
        response = httpx.get(
            f"{env['SYNC_MAILCHIMP__BASE_URL']}/lists/{env['SYNC_MAILCHIMP__LIST_ID']}/members",
            params={"count": 1000},
            auth=("any", env["SYNC_MAILCHIMP__API_KEY"]),
            timeout=10,
        )
        assert response.status_code == 200
        assert response.json()["total_items"] == 36
        assert json.loads(env["SYNC_MAILCHIMP__PURPOSES"])["newsletter"] == "status"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_unknown_vendor_is_refused_with_the_known_names() -> None:
    result = CliRunner().invoke(app, ["sandbox", "nosuchvendor"])
    assert result.exit_code == 2
    assert "known: mailchimp" in result.output


def test_seed_file_loads_good_lines_and_names_the_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "seed.jsonl"
    lines = [
        {"email": "jan@example.nl", "statuses": {"newsletter": "subscribed"}, "source": "Import"},
        {"statuses": {"newsletter": "subscribed"}},
        {"email": "piet@example.nl", "statuses": {"newsletter": "maybe"}},
        {"email": "kees@example.nl", "statuses": {"newsletter": "subscribed"}, "shoe_size": 44},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n", encoding="utf-8")
    contacts, errors = read_seed_file(path)
    assert [(e.line, e.field) for e in errors] == [(2, "email"), (3, "statuses"), (5, "(line)")]
    box = MailchimpSandbox()
    refused = seed(box, contacts)
    assert len(refused) == 1
    assert "shoe_size" in refused[0]
    assert box.status("jan@example.nl", "newsletter") is Status.SUBSCRIBED
    assert box.audience.find("jan@example.nl")["source"] == "Import"  # type: ignore[index]


def test_demo_people_cover_every_status_for_every_purpose() -> None:
    people = demo_people()
    assert len(people) == 36
    for purpose in ("newsletter", "promotions", "events", "lead_magnet"):
        assert {p.statuses[purpose] for p in people} == set(Status)
