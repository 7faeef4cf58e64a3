"""What Katib's StdOut metrics collector makes of a trial's output (Katib v0.19.0).

Katib reads the trial container's combined stdout and stderr line by line:

- a line is looked at only if it contains one of the metric names anywhere;
- its first space-separated token is the observation's timestamp when it parses as an
  RFC 3339 time (fractional seconds optional), else the zero time;
- every match of every filter (the Experiment's `metricsFormat`, else the default
  filter below) gives group 1 as the name and group 2 as the value, both stripped; a
  match counts when the name is one of the metrics. Values stay text.
- the trial's observation holds, per metric, the smallest and largest numeric value and
  the latest one: the value with the latest timestamp, a later line winning a tie;
- a trial whose output never names the objective has the single value "unavailable".

The objective's value then comes from its metric strategy (`min`, `max` or `latest`).
The regular expressions are Go RE2 in Katib; compiled here with re.ASCII they match the
same text for the filters this project uses.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Katib's default filter: `name=value`, the value a decimal or exponent number.
DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
UNAVAILABLE = "unavailable"
#: Go's zero time, 0001-01-01T00:00:00Z, in nanoseconds since the epoch.
ZERO_TIME = -62_135_596_800 * 1_000_000_000
#: Go's RFC3339Nano layout accepts any number of fractional digits and Z or an offset.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})"
)
STRATEGIES = ("min", "max", "latest")


@dataclass(frozen=True)
class MetricLog:
    """One observation; its time in nanoseconds since the epoch (ZERO_TIME if none)."""

    timestamp: int
    name: str
    value: str


def compile_filters(filters: Sequence[str] = ()) -> list[re.Pattern[str]]:
    """The filters as compiled patterns; none given means Katib's default filter."""
    return [re.compile(text, re.ASCII) for text in (filters or [DEFAULT_FILTER])]


def parse_timestamp(token: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time, or None if it is not one."""
    match = _RFC3339.fullmatch(token)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not (
        1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour <= 23
        and minute <= 59
        and second <= 59
    ):
        return None
    fraction = (match.group(7) or "").ljust(9, "0")[:9]
    zone = match.group(8)
    offset = 0
    if zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = (hours * 60 + minutes) * 60 * (1 if zone[0] == "+" else -1)
    seconds = calendar.timegm((year, month, day, hour, minute, second)) - offset
    return seconds * 1_000_000_000 + int(fraction)


def parse_line(
    line: str, metrics: Sequence[str], patterns: Sequence[re.Pattern[str]]
) -> list[MetricLog]:
    """The observations one output line holds, as Katib's collector reads them."""
    if not any(name in line for name in metrics):
        return []
    head, space, _ = line.partition(" ")
    timestamp = parse_timestamp(head) if space else None
    if timestamp is None:
        timestamp = ZERO_TIME
    found = []
    for pattern in patterns:
        if pattern.groups < 2:
            continue
        for match in pattern.finditer(line):
            name = match.group(1).strip()
            if name in metrics:
                found.append(MetricLog(timestamp, name, (match.group(2) or "").strip()))
    return found


def collect_logs(
    lines: Iterable[str], metrics: Sequence[str], filters: Sequence[str] = ()
) -> list[MetricLog]:
    """Every observation in the output, in line order (what Katib reports to its DB)."""
    patterns = compile_filters(filters)
    logs = []
    for line in lines:
        logs.extend(parse_line(line.rstrip("\r\n"), metrics, patterns))
    if metrics and not any(log.name == metrics[0] for log in logs):
        return [MetricLog(ZERO_TIME, metrics[0], UNAVAILABLE)]
    return logs


def to_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class MetricSummary:
    """A metric's observation: its min, max and latest values, as text."""

    name: str
    min: str = UNAVAILABLE
    max: str = UNAVAILABLE
    latest: str = UNAVAILABLE

    def value(self, strategy: str) -> float | None:
        """The metric under a strategy, as Katib extracts it; None if unavailable."""
        chosen = {"min": self.min, "max": self.max, "latest": self.latest}[strategy]
        if strategy != "latest" and chosen == UNAVAILABLE:
            chosen = self.latest
        return to_number(chosen)


def summarize(
    logs: Iterable[MetricLog], names: Iterable[str]
) -> dict[str, MetricSummary]:
    """Per metric: min and max over numeric values, latest by timestamp."""
    state: dict[str, dict] = {
        name: {
            "min": None,
            "max": None,
            "latest": UNAVAILABLE,
            "at": None,
            "seen": False,
        }
        for name in names
    }
    for log in logs:
        entry = state.get(log.name)
        if entry is None:
            continue
        number = to_number(log.value)
        if number is not None:
            if entry["min"] is None:
                entry["min"] = entry["max"] = (number, log.value)
            elif number < entry["min"][0]:
                entry["min"] = (number, log.value)
            elif number > entry["max"][0]:
                entry["max"] = (number, log.value)
        if not entry["seen"] or entry["at"] <= log.timestamp:
            entry["latest"], entry["at"], entry["seen"] = log.value, log.timestamp, True
    return {
        name: MetricSummary(
            name,
            min=entry["min"][1] if entry["min"] else UNAVAILABLE,
            max=entry["max"][1] if entry["max"] else UNAVAILABLE,
            latest=entry["latest"],
        )
        for name, entry in state.items()
    }


def ordered_values(logs: Iterable[MetricLog], name: str) -> list[float]:
    """The numeric values of one metric in time order (ties keep line order)."""
    chosen = [
        (log.timestamp, index, to_number(log.value))
        for index, log in enumerate(logs)
        if log.name == name
    ]
    return [value for _, _, value in sorted(chosen) if value is not None]
