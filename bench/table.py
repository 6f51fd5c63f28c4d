"""The one benchmark table: rows, their verdicts, the aligned text and bench/results.json.

Pure plumbing, no benchmark logic: a bench declares its rows (`Spec`: name, unit, target) and
returns measured values; `build_row` judges each against its target, and `render`/`write`
print and store them. A row whose figure was not measured keeps `value: null` and says why.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Op = Literal[">=", "<="]


@dataclass(frozen=True)
class Target:
    """A bound a figure must meet: `value >= bound` or `value <= bound`."""

    op: Op
    bound: float

    def met(self, value: float) -> bool:
        """Whether `value` satisfies the bound."""
        return value >= self.bound if self.op == ">=" else value <= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:,g}"


@dataclass(frozen=True)
class Spec:
    """A row a bench promises: its name, unit, the issue's target (None: reported only)."""

    name: str
    unit: str
    target: Target | None = None
    issue: str = ""


@dataclass(frozen=True)
class Measured:
    """A bench's figure for one row; `valid=False` fails the row whatever the value (e.g. a
    contention run that overbooked), `note` says what the figure rests on."""

    value: float | None
    note: str = ""
    valid: bool = True


@dataclass
class Row:
    """One line of the table, as printed and as stored in bench/results.json."""

    name: str
    value: float | None
    unit: str
    target: str | None
    result: Literal["pass", "fail"] | None
    command: str
    machine: dict[str, Any]
    note: str = ""
    issue: str = ""
    measured_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )
    commit: str = ""


def machine() -> dict[str, Any]:
    """Cores, CPU model, load average now and the Python: what a figure was measured on."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def git_commit() -> str:
    """The checkout's commit (short), or '' outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def build_row(
    spec: Spec, measured: Measured | None, *, command: str, where: dict[str, Any], commit: str = ""
) -> Row:
    """Judge one figure against its spec's target; no figure gives value null, no verdict."""
    if measured is None:
        measured = Measured(None, "not measured")
    value = measured.value
    result: Literal["pass", "fail"] | None = None
    if value is not None and spec.target is not None:
        result = "pass" if spec.target.met(value) and measured.valid else "fail"
    elif value is not None and not measured.valid:
        result = "fail"
    return Row(
        name=spec.name,
        value=value,
        unit=spec.unit,
        target=str(spec.target) if spec.target else None,
        result=result,
        command=command,
        machine=where,
        note=measured.note,
        issue=spec.issue,
        commit=commit,
    )


def _value(v: float | None) -> str:
    if v is None:
        return "null"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"


def render(rows: list[Row]) -> str:
    """The rows as an aligned text table, the machine on a line above it (the same for all)."""
    header = ("name", "value", "unit", "target", "result", "command", "note")
    cells = [
        (
            r.name,
            _value(r.value),
            r.unit,
            r.target or "-",
            r.result or "-",
            r.command,
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header))]
    right = {1}  # numbers align right

    def line(cols: tuple[str, ...]) -> str:
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cols)]
        return "  ".join(out).rstrip()

    lines = []
    if rows:
        m = rows[0].machine
        lines.append(
            f"machine: {m.get('cores')} cores, {m.get('cpu')}, load average "
            f"{m.get('load_avg_1m')} at the start, Python {m.get('python')}"
        )
    lines += [line(header), line(tuple("-" * w for w in widths))]
    lines += [line(c) for c in cells]
    return "\n".join(lines)


def write(path: Path, rows: list[Row]) -> dict[str, Any]:
    """Merge `rows` into the JSON file at `path`: a run of some rows replaces those rows and
    keeps the others (each row carries its own command, time, commit and machine)."""
    previous: dict[str, Any] = {}
    if path.exists():
        try:
            previous = {r["name"]: r for r in json.loads(path.read_text())["rows"]}
        except (ValueError, KeyError, TypeError):
            previous = {}  # an unreadable file is replaced, never a reason to fail the bench
    for r in rows:
        previous[r.name] = asdict(r)
    doc = {"rows": sorted(previous.values(), key=lambda r: r["name"])}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return doc
