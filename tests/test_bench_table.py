"""`make bench`'s plumbing: rows judged against targets, the aligned table, results.json merged,
BENCH selecting benches or single rows, missing figures kept as null rows with a reason."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


table = _load("table")
run = _load("run")
WHERE = {"cores": 2, "cpu": "Test CPU", "load_avg_1m": 0.5, "python": "3.11"}


def row(spec: object, measured: object) -> object:
    return table.build_row(spec, measured, command="make bench BENCH=x", where=WHERE, commit="c")


def test_rows_are_judged_against_their_target_both_ways() -> None:
    rate = table.Spec("x.rate", "items/s", table.Target(">=", 500))
    p95 = table.Spec("x.p95", "ms", table.Target("<=", 50))
    assert row(rate, table.Measured(500.0)).result == "pass"
    assert row(rate, table.Measured(499.9)).result == "fail"
    assert row(p95, table.Measured(50.0)).result == "pass"
    assert row(p95, table.Measured(50.1)).result == "fail"
    # A figure from a run that broke its own guarantee fails whatever the value.
    assert row(rate, table.Measured(9000.0, valid=False)).result == "fail"
    # No target: reported only; no figure: null, no verdict, the reason kept.
    assert row(table.Spec("x.p50", "ms"), table.Measured(3.0)).result is None
    missing = row(p95, table.Measured(None, "not merged"))
    assert (missing.value, missing.result, missing.note) == (None, None, "not merged")
    assert row(p95, None).note == "not measured"
    assert row(rate, table.Measured(1.0)).target == ">= 500"


def test_the_table_is_aligned_and_names_the_machine() -> None:
    rows = [
        row(table.Spec("a.rate", "items/s", table.Target(">=", 20_000)), table.Measured(12345.0)),
        row(table.Spec("long.row.name_p99", "ms", table.Target("<=", 150)), table.Measured(7.5)),
        row(table.Spec("c.gap", "ms", table.Target("<=", 50)), table.Measured(None, "why")),
    ]
    lines = table.render(rows).splitlines()
    assert lines[0].startswith("machine: 2 cores, Test CPU")
    header, rule, *body = lines[1:]
    assert set(rule.replace(" ", "")) == {"-"}
    assert header.split()[:5] == ["name", "value", "unit", "target", "result"]
    # Every column starts at the same offset on every line (values right-aligned).
    value_end = header.index("value") + len("value")
    assert [b[value_end - 1] for b in body] == ["5", "0", "l"]
    assert "12,345" in body[0] and "fail" in body[0]
    assert "7.50" in body[1] and "pass" in body[1]
    assert "null" in body[2] and body[2].rstrip().endswith("why")
    assert len({line.index("make bench") for line in body}) == 1


def test_results_json_merges_runs_row_by_row(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    a = table.Spec("a", "ms", table.Target("<=", 1))
    b = table.Spec("b", "ms")
    table.write(out, [row(a, table.Measured(2.0)), row(b, table.Measured(1.0))])
    table.write(out, [row(a, table.Measured(0.5))])  # a later run of one row
    doc = json.loads(out.read_text())
    got = {r["name"]: r for r in doc["rows"]}
    assert (got["a"]["value"], got["a"]["result"]) == (0.5, "pass")
    assert got["b"]["value"] == 1.0  # kept from the first run
    assert got["a"]["machine"] == WHERE and got["a"]["command"] == "make bench BENCH=x"
    out.write_text("not json")  # a damaged file is replaced, not fatal
    assert [r["name"] for r in table.write(out, [row(b, None)])["rows"]] == ["b"]


def test_bench_selects_benches_groups_and_single_rows() -> None:
    def names(only: str) -> list[tuple[str, set[str] | None]]:
        return [(b.name, keep) for b, keep in run.select(only)]

    assert [n for n, _ in names("")] == [b.name for b in run.BENCHES]
    assert names("matcher") == [("matcher", None)]
    assert names("metrics") == [("metrics", None), ("metrics_funnel", None)]
    assert names("gateway.added_p50") == [("gateway", {"gateway.added_p50"})]
    assert names("gateway.added_p50,gateway") == [("gateway", None)]
    with pytest.raises(SystemExit, match="no such bench"):
        run.select("nonsense")
    # Every row of issue 15's list has a place in the registry, measured or not.
    rows = {s.name for b in run.BENCHES for s in b.rows}
    for wanted in (
        "gateway.throughput_ratio",
        "gateway.added_p50",
        "propagation.p50",
        "propagation.p99",
        "registrations.rate",
        "screening.rate",
        "screening.verdict_p99",
        "search.p95",
        "list.p95",
        "metrics.ingest_rate",
        "metrics.rebuild_rate",
        "metrics.dashboard_p95",
        "metrics.cohort_p95",
        "metrics.funnel_p95",
        "load.p95",
    ):
        assert wanted in rows


def test_a_run_of_unbuilt_benches_writes_null_rows_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "results.json"
    for k in [k for k in os.environ if k.startswith("BENCH_")]:
        monkeypatch.delenv(k)

    def unbuilt(ctx: object) -> dict:
        raise run.Skipped("load test not built yet")

    # Every real bench is built now: a stand-in keeps the rows the null-row path is shown on.
    load = run.Bench(
        "load",
        (run.ms("load.p50"), run.ms("load.p99")),
        unbuilt,
    )
    monkeypatch.setattr(run, "BENCHES", (load,))
    assert run.main(["--only", "load", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert {r["name"] for r in doc["rows"]} == {s.name for s in load.rows}
    assert all(r["value"] is None and "not built" in r["note"] for r in doc["rows"])
    assert all(r["command"] == "make bench BENCH=load" for r in doc["rows"])
    assert all(r["machine"]["cores"] >= 1 and r["machine"]["cpu"] for r in doc["rows"])
    assert "load.p99" in capsys.readouterr().out
    # The knobs a run was given are part of the command that reproduces it.
    monkeypatch.setenv("BENCH_SECONDS", "2")
    run.main(["--only", "load.p50", "--out", str(out)])
    got = {r["name"]: r["command"] for r in json.loads(out.read_text())["rows"]}
    assert got["load.p50"] == "BENCH_SECONDS=2 make bench BENCH=load"
    assert got["load.p99"] == "make bench BENCH=load"  # from the earlier run, kept
