"""Generate the event catalogue (AsyncAPI 3.0 + one JSON Schema per event) from the registry.

Never written by hand: `make catalogue` regenerates docs/events/, and a test fails when the
committed catalogue differs from what the payload models say.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import pkgutil
from pathlib import Path
from typing import Any

import yaml

from servicekit.events import REGISTRY, Event, context_of

CE_HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 binary mode: attributes travel as NATS headers.",
    "required": ["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "Nats-Msg-Id"],
    "properties": {
        "ce-specversion": {"type": "string", "const": "1.0"},
        "ce-id": {"type": "string", "format": "uuid", "description": "UUIDv7, unique per event"},
        "ce-source": {"type": "string", "examples": ["/hearth/members"]},
        "ce-type": {"type": "string", "examples": ["hearth.members.member.joined.v1"]},
        "ce-time": {"type": "string", "format": "date-time"},
        "ce-subject": {"type": "string", "description": "the aggregate id the event is about"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context of the write"},
        "Nats-Msg-Id": {"type": "string", "description": "equals ce-id; JetStream de-duplication"},
    },
}


def discover() -> None:
    """Import `<package>.events` of every installed hearth-* distribution (fills the registry)."""
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if not name.startswith("hearth-"):
            continue
        package = name.replace("-", "_")
        module = package + ".events"
        if importlib.util.find_spec(package) and importlib.util.find_spec(module):
            importlib.import_module(module)
        # Services grown into subpackages (Dispatch style) keep events in `<pkg>.<sub>.events`.
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec else []
        for info in pkgutil.iter_modules(locations):
            if info.ispkg and importlib.util.find_spec(f"{package}.{info.name}.events"):
                importlib.import_module(f"{package}.{info.name}.events")


def catalogued() -> dict[str, type[Event]]:
    """The registered event types that Hearth's services own (not test-only ones)."""
    return {t: m for t, m in REGISTRY.items() if m.__module__.startswith("hearth_")}


def _message(ce_type: str, model: type[Event]) -> dict[str, Any]:
    return {
        "name": ce_type,
        "title": model.__name__,
        "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else "",
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
        "payload": {"$ref": f"schemas/{ce_type}.json"},
    }


def build(prefix: str = "hearth") -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The AsyncAPI document and the JSON Schema of every registered event type."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, dict[str, Any]] = {}
    owned = catalogued()
    for ce_type in sorted(owned):
        model = owned[ce_type]
        key = ce_type.removeprefix("hearth.").replace(".", "_")
        schema = model.model_json_schema()
        schema["$id"] = f"urn:hearth:event:{ce_type}"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schemas[ce_type] = schema
        messages[key] = _message(ce_type, model)
        channels[key] = {
            "address": f"{prefix}.{ce_type.removeprefix('hearth.')}",
            "description": f"Stream {prefix.upper()}_{context_of(ce_type).upper()}",
            "messages": {key: {"$ref": f"#/components/messages/{key}"}},
        }
        operations[f"publish_{key}"] = {
            "action": "send",
            "summary": f"{context_of(ce_type)} publishes this event",
            "channel": {"$ref": f"#/channels/{key}"},
        }
    doc = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Hearth domain events",
            "version": "1",
            "description": (
                "Every event Hearth publishes on NATS JetStream. Subjects are "
                "`<prefix>.<context>.<entity>.<fact>.v<N>` (prefix `hearth` by default); "
                "one stream "
                "per context. Generated from the payload models; do not edit."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {"nats": {"host": "127.0.0.1:4222", "protocol": "nats"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {"CloudEventsHeaders": CE_HEADERS_SCHEMA}},
    }
    return doc, schemas


def render(out: Path) -> dict[Path, str]:
    """File contents of the catalogue under `out` (not written)."""
    doc, schemas = build()
    files = {out / "asyncapi.yaml": yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)}
    for ce_type, schema in schemas.items():
        files[out / "schemas" / f"{ce_type}.json"] = (
            json.dumps(schema, indent=2, sort_keys=True) + "\n"
        )
    return files


def main() -> None:
    """`python -m servicekit.catalogue [--out docs/events]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/events"))
    args = parser.parse_args()
    discover()
    files = render(args.out)
    schemas_dir = args.out / "schemas"
    schemas_dir.mkdir(parents=True, exist_ok=True)
    for stale in schemas_dir.glob("*.json"):
        if stale not in files:
            stale.unlink()
    for path, text in files.items():
        path.write_text(text)
    print(f"wrote {len(files)} files to {args.out}")


if __name__ == "__main__":
    main()
