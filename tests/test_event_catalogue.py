"""The committed event catalogue is exactly what the payload models generate."""

from pathlib import Path

from servicekit import catalogue

ROOT = Path(__file__).resolve().parents[1]


def test_catalogue_is_generated_and_current() -> None:
    catalogue.discover()
    out = ROOT / "docs" / "events"
    expected = catalogue.render(out)
    stale = [
        str(path.relative_to(ROOT))
        for path, text in expected.items()
        if not path.exists() or path.read_text() != text
    ]
    extra = [
        str(p.relative_to(ROOT)) for p in (out / "schemas").glob("*.json") if p not in expected
    ]
    assert not stale and not extra, f"run `make catalogue`: stale {stale}, extra {extra}"


def test_every_event_has_a_docstring_and_each_context_publishes_only_its_own() -> None:
    catalogue.discover()
    hearth_types = catalogue.catalogued()
    assert hearth_types, "no event types registered"
    for ce_type, model in hearth_types.items():
        assert model.__doc__, f"{ce_type} needs a one-line docstring"
        context = ce_type.split(".")[1]
        assert model.__module__.startswith(f"hearth_{context}."), (
            f"{ce_type} must be defined by the {context} service, not {model.__module__}"
        )
