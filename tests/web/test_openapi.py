"""The OpenAPI description: valid OpenAPI 3, and a schemathesis run against a live appliance agrees with it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import schemathesis

from tests.e2e.conftest import running_appliance
from web.openapi import DOCUMENT

ST = str(Path(sys.executable).parent / "st")


def test_the_document_is_valid_openapi_3() -> None:
    schema = schemathesis.openapi.from_dict(DOCUMENT)

    operations = {f"{op.method.upper()} {op.path}" for op in (r.ok() for r in schema.get_all_operations())}

    for route in ("GET /api/v1/health", "GET /api/v1/meter", "GET /api/v1/price", "GET /api/v1/messages",
                  "GET /api/v1/events", "GET /api/v1/tariff", "GET /api/v1/cost", "GET /api/v1/cost/whatif",
                  "GET /api/v1/ws", "GET /api/v1/openapi.json",
                  "POST /api/v1/messages/{meter_id}/{message_id}/confirm",
                  "POST /api/v1/messages/{meter_id}/{message_id}/read",
                  "POST /api/v1/events/{meter_id}/{issuer_event_id}/opt-out",
                  "POST /api/v1/events/{meter_id}/{issuer_event_id}/opt-in"):
        assert route in operations


def test_every_api_route_is_described(tmp_path: Path) -> None:
    from ems.config import load_config
    from ems.hub import Hub
    from web.app import create_app

    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "ems.yaml").write_text("site: {timezone: UTC}\n")
    app = create_app(Hub(load_config(folder), tmp_path / "data"))
    routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    api = {(m, p) for m, p in routes if p.startswith("/api/v1/") and m != "HEAD"}

    assert api
    assert {(m, p) for m, p in api if p not in DOCUMENT["paths"] or m.lower() not in DOCUMENT["paths"][p]} == set()


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path, output_dir: Path) -> None:
    async with running_appliance(tmp_path) as appliance:
        await appliance.online()
        await appliance.wait_until(lambda: appliance.hub.control.events() and appliance.hub.state.messages,
                                   what="the scenario's message and event")
        run = await asyncio.create_subprocess_exec(
            ST, "run", appliance.url + "/api/v1/openapi.json",
            "--header", f"Authorization: Bearer {appliance.token}",
            "--checks", "all",
            # unsupported_method: the error middleware answers 405 without the Allow header (known);
            # positive_data_acceptance: valid-looking ids of messages or events that do not exist are 404.
            "--exclude-checks", "unsupported_method,positive_data_acceptance",
            "--max-examples", "25", "--seed", "4", "--workers", "1", "--no-shrink",
            "--request-timeout", "10",
            "--report", "junit", "--report-dir", str(output_dir),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(run.communicate(), 120)
    text = output.decode(errors="replace")
    (output_dir / "schemathesis.txt").write_text(text)
    assert run.returncode == 0, text[-6000:]



async def test_schemathesis_without_credentials_finds_no_server_error_and_only_documented_refusals(
        tmp_path: Path, output_dir: Path) -> None:
    """The same run with no token (a device or person on the home LAN): every route but the public ones
    answers a documented refusal (401), never a 500, with the documented headers and content type."""
    async with running_appliance(tmp_path) as appliance:
        await appliance.online()
        run = await asyncio.create_subprocess_exec(
            ST, "run", appliance.url + "/api/v1/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                        "response_headers_conformance,response_schema_conformance",
            "--max-examples", "10", "--seed", "4", "--workers", "1", "--no-shrink",
            "--request-timeout", "10",
            "--report", "junit", "--report-dir", str(output_dir / "anonymous"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(run.communicate(), 120)
    text = output.decode(errors="replace")
    (output_dir / "schemathesis-anonymous.txt").write_text(text)
    assert run.returncode == 0, text[-6000:]
    assert "operations returned only 401/403 responses" in text, text[-3000:]  # refused, every one but the public
