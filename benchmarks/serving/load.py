"""Drive a server with wrk: bodies that vary per request, closed-loop or paced.

wrk (Debian's 4.1) has no constant-rate mode, so a paced run uses its per-request
`delay()` hook: each wrk thread keeps a schedule of one request every
threads/rate seconds and delays each request until its slot (the clock comes from
clock_gettime through LuaJIT's FFI). With enough connections this holds the offered
rate while the server keeps up; when it cannot, the achieved rate falls below the
target, and the results show both. Latency is wrk's: from sending a request to the
end of its response.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } xgbflow_timespec;
int clock_gettime(int clock_id, xgbflow_timespec *tp);
]]
local clock = ffi.new("xgbflow_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local bodies = {%(bodies)s}
local path = %(path)s
local interval_ms = %(interval_ms)s
local index = 0
local next_ms = nil
local headers = {["Content-Type"] = "application/json"}

function request()
  index = index %% #bodies + 1
  return wrk.format("POST", path, headers, bodies[index])
end

if interval_ms > 0 then
  function delay()
    local now = now_ms()
    if next_ms == nil or next_ms < now - 1000 then next_ms = now end
    next_ms = next_ms + interval_ms
    local wait = next_ms - now
    if wait < 0 then return 0 end
    return wait
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "RESULT {\"requests\": %%d, \"duration_us\": %%d, \"connect\": %%d, " ..
    "\"read\": %%d, \"write\": %%d, \"status\": %%d, \"timeout\": %%d, " ..
    "\"p50_us\": %%d, \"p90_us\": %%d, \"p99_us\": %%d, \"max_us\": %%d}\n",
    summary.requests, summary.duration, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: throughput, error share and latency percentiles in ms."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_share(self) -> float:
        return self.errors / self.requests if self.requests else 1.0


def write_script(
    target: Path, path: str, bodies: list[bytes], rate: float, threads: int
) -> Path:
    """A wrk Lua script cycling through `bodies`; paced at `rate` if above zero."""
    interval_ms = 1000.0 * threads / rate if rate > 0 else 0
    quoted = ",\n".join(_lua_string(body.decode()) for body in bodies)
    target.write_text(
        _SCRIPT
        % {"bodies": quoted, "path": _lua_string(path), "interval_ms": interval_ms}
    )
    return target


def run_wrk(
    url: str,
    script: Path,
    *,
    seconds: int,
    connections: int,
    threads: int = 1,
    timeout_s: int = 5,
) -> LoadResult:
    """Run wrk against `url` (loopback only) and parse the script's RESULT line."""
    if not re.match(r"^http://(127\.\d+\.\d+\.\d+|localhost)(:\d+)?/", url):
        raise ValueError(f"url {url!r} is not on loopback; benchmarks stay local")
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(script),
        url,
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    line = next(
        (row for row in completed.stdout.splitlines() if row.startswith("RESULT ")),
        None,
    )
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}")
    raw = json.loads(line.removeprefix("RESULT "))
    errors = sum(raw[key] for key in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        errors=errors,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
    )


def _lua_string(text: str) -> str:
    # JSON's escapes are valid in a Lua long string only if it has no "]]"; the
    # bodies are compact JSON, so quote with a level-1 long bracket instead.
    if "]=]" in text:
        raise ValueError("body contains ']=]', which the Lua quoting cannot hold")
    return f"[=[{text}]=]"
