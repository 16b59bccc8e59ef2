"""S5: many concurrent live streams on one server process (a slow source, heartbeats flowing).

    python bench/s5.py --url http://127.0.0.1:PORT/api/chat/stream --server-pid PID \
        --streams 10000 --clients 4 --ramp-s 50 --n 2 --delay-ms 35000 --heartbeat-s 5

The parent starts `--clients` worker processes (this file with `--worker`), each holding its
share of the streams on one uvloop with a lean raw-socket protocol (httptools, no per-stream
task). Stream k opens at `start + k/streams * ramp_s`; every stream asks the synthetic source
for `n` events `delay_ms` apart, so all of them are live together between the end of the
ramp and `delay_ms` after it. Meanwhile the parent samples the server once a second from
/proc/<pid> (VmRSS, Threads, open fds, CPU time) and, when the server has one, the
`deerflow_streams_live` gauge of its /metrics.

Per stream the client records: the status, the events and `: ping` comments it read, the
lateness of each event (arrival - (headers + (i+1)·delay)) and of each ping (time since the
stream's previous block - heartbeat_s), and whether the body ended cleanly. A stream is
*admitted* when it answers 200 with `text/event-stream`, *served* when it also delivered all
`n` events and ended cleanly. The result is one JSON object (stdout, and `--out`).
Standard library + uvloop + httptools only (the shared harness's venv has both).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit

PING = b": ping"


# ----------------------------------------------------------------------------- worker
class Stream(asyncio.Protocol):
    """One SSE request; parses the response with httptools and times blocks as they come."""

    __slots__ = (
        "buf", "ctype", "ended", "error", "events", "parser", "pings", "req", "status",
        "t_end", "t_headers", "t_last", "t_open", "tr", "w",
    )  # fmt: skip

    def __init__(self, w: Worker, req: bytes) -> None:
        import httptools

        self.w = w
        self.req = req
        self.tr: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.ctype = b""
        self.t_open = time.perf_counter()
        self.t_end = 0.0
        self.t_headers = 0.0
        self.t_last = 0.0
        self.buf = b""
        self.events = 0
        self.pings = 0
        self.ended = False
        self.error = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tr = transport  # type: ignore[assignment]
        transport.write(self.req)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as exc:
            if not self.ended:
                self.fail(f"parse: {exc}")

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.t_end = time.perf_counter()
        if not self.ended and not self.error:
            self.error = "closed before the end" if self.status else "closed before headers"
        self.w.finished(self)

    def fail(self, why: str) -> None:
        self.error = self.error or why
        if self.tr is not None:
            self.tr.abort()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.ctype = value

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.t_headers = self.t_last = time.perf_counter()
        self.w.admit_s.append(self.t_headers - self.t_open)
        self.w.last_headers = max(self.w.last_headers, self.t_headers)

    def on_body(self, body: bytes) -> None:
        now = time.perf_counter()
        buf = self.buf + body
        *blocks, self.buf = buf.split(b"\n\n")
        for block in blocks:
            if block.startswith(PING):
                self.pings += 1
                self.w.ping_late.append(now - self.t_last - self.w.heartbeat_s)
                self.w.ping_at.append(now)
            elif b"data:" in block:
                self.w.event_late.append(now - self.t_headers - (self.events + 1) * self.w.delay_s)
                self.events += 1
            self.t_last = now

    def on_message_complete(self) -> None:
        self.ended = True
        if self.tr is not None:
            self.tr.close()


class Worker:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.loop = asyncio.get_running_loop()
        self.heartbeat_s = a.heartbeat_s
        self.delay_s = a.delay_ms / 1000
        self.ping_late: list[float] = []
        self.event_late: list[float] = []
        self.admit_s: list[float] = []
        self.ping_at: list[float] = []  # perf_counter() of each ping, parallel to ping_late
        self.last_headers = 0.0
        self.streams: list[Stream] = []
        self.open_errors: dict[str, int] = {}
        self.live = 0
        self.all_done = self.loop.create_future()
        self.loop_lag_max = 0.0
        self.opening_done = False

    def finished(self, st: Stream) -> None:
        self.live -= 1
        if self.live == 0 and self.opening_done and not self.all_done.done():
            self.all_done.set_result(None)

    def request(self, sid: str) -> bytes:
        u = urlsplit(self.a.url)
        body = json.dumps(
            {
                "messages": [{"role": "user", "content": "bench"}],
                "thread_id": sid,
                "stream_id": sid,
                "n": self.a.n,
                "delay_ms": self.a.delay_ms,
            }
        ).encode()
        head = (
            f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
            "Accept: text/event-stream\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        return head + body

    async def lag_probe(self) -> None:
        while True:
            t = self.loop.time()
            await asyncio.sleep(0.1)
            self.loop_lag_max = max(self.loop_lag_max, self.loop.time() - t - 0.1)

    async def open_one(self, sid: str) -> None:
        u = urlsplit(self.a.url)
        st = Stream(self, self.request(sid))
        self.live += 1
        try:
            await self.loop.create_connection(lambda: st, u.hostname, u.port)
        except OSError as exc:
            self.live -= 1
            key = type(exc).__name__
            self.open_errors[key] = self.open_errors.get(key, 0) + 1
            return
        self.streams.append(st)

    async def run(self) -> dict[str, object]:
        a = self.a
        probe = asyncio.ensure_future(self.lag_probe())
        mine = range(a.index, a.streams, a.clients)
        t0 = self.loop.time() + (a.start_at - time.time())
        pending = set()
        for k in mine:
            due = t0 + k / a.streams * a.ramp_s
            delay = due - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(self.open_one(f"s5-{a.index}-{k}"))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
        self.opening_done = True
        if self.live == 0 and not self.all_done.done():
            self.all_done.set_result(None)
        deadline = a.start_at + a.ramp_s + a.n * self.delay_s + a.slack_s - time.time()
        try:
            await asyncio.wait_for(asyncio.shield(self.all_done), max(1.0, deadline))
        except TimeoutError:
            for st in self.streams:
                if not st.ended and st.tr is not None:
                    st.fail("timeout")
        probe.cancel()
        statuses: dict[str, int] = {}
        errors: dict[str, int] = dict(self.open_errors)
        for st in self.streams:
            statuses[str(st.status)] = statuses.get(str(st.status), 0) + 1
            if st.error:
                errors[st.error] = errors.get(st.error, 0) + 1
        ok = [
            st
            for st in self.streams
            if st.status == 200 and st.ctype.startswith(b"text/event-stream")
        ]
        return {
            "opened": len(self.streams),
            "admitted": len(ok),
            "served": sum(1 for st in ok if st.ended and st.events == a.n and not st.error),
            "statuses": statuses,
            "errors": errors,
            "pings": sum(st.pings for st in self.streams),
            "ping_late": [round(x, 4) for x in self.ping_late],
            "event_late": [round(x, 4) for x in self.event_late],
            "admit": [round(x, 4) for x in self.admit_s],
            "live_spans": [
                (round(st.t_headers, 3), round(st.t_end or time.perf_counter(), 3)) for st in ok
            ],
            # Pings after this worker's last admission: lateness with every stream live.
            "ping_late_all_live": [
                round(x, 4)
                for x, t in zip(self.ping_late, self.ping_at, strict=True)
                if t > self.last_headers
            ],
            "loop_lag_max_s": round(self.loop_lag_max, 4),
            "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2),
        }


def worker_main(a: argparse.Namespace) -> None:
    import uvloop

    async def main() -> dict[str, object]:
        return await Worker(a).run()

    result = uvloop.run(main())
    with open(a.result, "w") as f:  # not stdout: a pipe nobody reads yet would block
        json.dump(result, f)


# ----------------------------------------------------------------------------- parent
def proc_sample(pid: int) -> dict[str, float]:
    """RSS (KB), threads, open fds and CPU seconds of the server process."""
    out: dict[str, float] = {"t": time.time()}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


LIVE_RE = re.compile(rb"^deerflow_streams_live\{[^}]*\}\s+([0-9.e+]+)", re.M)


def live_gauge(url: str) -> int | None:
    """Sum of the server's `deerflow_streams_live` gauge, or None (no /metrics)."""
    u = urlsplit(url)
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read()
        c.close()
    except OSError:
        return None
    if r.status != 200:
        return None
    return int(sum(float(m) for m in LIVE_RE.findall(body)))


def warm_up(url: str) -> int:
    u = urlsplit(url)
    body = json.dumps({"messages": [{"role": "user", "content": "bench"}], "n": 3}).encode()
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("POST", u.path, body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def most_live(spans: list[list[float]]) -> int:
    """The most streams live at once (headers received, connection not closed)."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    live = best = 0
    for _, step in edges:
        live += step
        best = max(best, live)
    return best


def nearest(samples: list[dict[str, float]], live: int) -> dict[str, float] | None:
    """The first sample with at least `live` live streams."""
    for s in samples:
        if s.get("live", -1) >= live:
            return s
    return None


def gc_pauses(path: str | None) -> dict[str, object] | None:
    """Summarise the server's GC pauses of 2 ms or more (`<time> gc <generation> <ms> <n>`)."""
    if not path or not os.path.exists(path):
        return None
    pauses = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "gc":
                pauses.append((int(parts[2]), float(parts[3])))
    full = [ms for gen, ms in pauses if gen == 2]
    return {
        "pauses": len(pauses),
        "max_ms": max((ms for _, ms in pauses), default=0.0),
        "total_ms": round(sum(ms for _, ms in pauses), 1),
        "gen2": len(full),
        "gen2_max_ms": max(full, default=0.0),
    }


def parent_main(a: argparse.Namespace) -> None:
    pid = a.server_pid
    status = warm_up(a.url)
    has_gauge = live_gauge(a.url) is not None
    time.sleep(1.0)
    idle = proc_sample(pid)
    if has_gauge:
        idle["live"] = live_gauge(a.url) or 0
    start_at = time.time() + 1.0
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--start-at", str(start_at)]
    for k in ("url", "streams", "clients", "ramp_s", "n", "delay_ms", "heartbeat_s", "slack_s"):
        cmd += [f"--{k.replace('_', '-')}", str(getattr(a, k))]
    if a.client_cpus:
        cmd = ["taskset", "-c", a.client_cpus, *cmd]
    tmp = tempfile.mkdtemp(prefix="s5-")
    files = [os.path.join(tmp, f"worker-{i}.json") for i in range(a.clients)]
    procs = [
        subprocess.Popen([*cmd, "--index", str(i), "--result", files[i]]) for i in range(a.clients)
    ]
    samples: list[dict[str, float]] = []
    while any(p.poll() is None for p in procs):
        s = proc_sample(pid)
        s["t"] -= start_at
        if has_gauge:
            g = live_gauge(a.url)
            if g is not None:
                s["live"] = g
        samples.append(s)
        time.sleep(1.0)
    results = []
    for path in files:
        try:
            with open(path) as f:
                results.append(json.load(f))
        except (OSError, ValueError):
            results.append({})
    shutil.rmtree(tmp, ignore_errors=True)
    time.sleep(3.0)
    after = proc_sample(pid)
    if has_gauge:
        after["live"] = live_gauge(a.url) or 0

    ping_late = [x for r in results for x in r.get("ping_late", [])]
    event_late = [x for r in results for x in r.get("event_late", [])]
    admit = [x for r in results for x in r.get("admit", [])]
    ping_all_live = [x for r in results for x in r.get("ping_late_all_live", [])]

    def merged(key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in results:
            for k, v in r.get(key, {}).items():
                out[k] = out.get(k, 0) + v
        return out

    peak = max(samples, key=lambda s: (s.get("live", 0), s["rss_kb"])) if samples else idle
    ramp = [s for s in samples if 0 <= s["t"] <= a.ramp_s]
    adm_cpu = (ramp[-1]["cpu_s"] - idle["cpu_s"]) if ramp else None
    ms = lambda x: None if x is None else round(x * 1000, 1)  # noqa: E731
    summary = {
        "label": a.label,
        "when": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "params": {
            k: getattr(a, k)
            for k in ("streams", "clients", "ramp_s", "n", "delay_ms", "heartbeat_s")
        },
        "warmup_status": status,
        "opened": sum(r.get("opened", 0) for r in results),
        "admitted": sum(r.get("admitted", 0) for r in results),
        "served": sum(r.get("served", 0) for r in results),
        "statuses": merged("statuses"),
        "errors": merged("errors"),
        "live_peak": peak.get("live"),
        "live_peak_client": most_live([sp for r in results for sp in r.get("live_spans", [])]),
        "pings": len(ping_late),
        "ping_late_ms": {
            "p50": ms(pct(ping_late, 50)),
            "p99": ms(pct(ping_late, 99)),
            "max": ms(max(ping_late, default=None)),
        },
        "pings_all_admitted": len(ping_all_live),
        "ping_late_all_admitted_ms": {
            "p50": ms(pct(ping_all_live, 50)),
            "p99": ms(pct(ping_all_live, 99)),
            "max": ms(max(ping_all_live, default=None)),
        },
        "event_late_ms": {
            "p50": ms(pct(event_late, 50)),
            "p99": ms(pct(event_late, 99)),
            "max": ms(max(event_late, default=None)),
        },
        "admit_ms": {
            "p50": ms(pct(admit, 50)),
            "p99": ms(pct(admit, 99)),
            "max": ms(max(admit, default=None)),
        },
        "client_loop_lag_max_ms": ms(
            max((r.get("loop_lag_max_s", 0) for r in results), default=None)
        ),
        "client_cpu_s": round(sum(r.get("cpu_s", 0) for r in results), 1),
        "rss_mb": {
            "idle": round(idle["rss_kb"] / 1024, 1),
            "peak_live": round(peak["rss_kb"] / 1024, 1),
            "max": round(max(s["rss_kb"] for s in samples) / 1024, 1) if samples else None,
            "after": round(after["rss_kb"] / 1024, 1),
        },
        "kb_per_stream": round(
            (peak["rss_kb"] - idle["rss_kb"]) / max(1, peak.get("live") or a.streams), 1
        ),
        "threads": {
            "idle": idle["threads"],
            "max": max((s["threads"] for s in samples), default=None),
            "after": after["threads"],
        },
        "threads_at_live": {
            str(n): (s["threads"] if (s := nearest(samples, n)) else None)
            for n in (10, 500, 2000, a.streams)
        },
        "fds": {
            "idle": idle["fds"],
            "max": max((s["fds"] for s in samples), default=None),
            "after": after["fds"],
        },
        "server_cpu_s": {
            "ramp": round(adm_cpu, 2) if adm_cpu is not None else None,
            "total": round(samples[-1]["cpu_s"] - idle["cpu_s"], 2) if samples else None,
        },
        "gc": gc_pauses(a.gc_log),
        "admission_cpu_us": round(adm_cpu / a.streams * 1e6) if adm_cpu else None,
        "timeline": [
            {k: (round(v, 2) if isinstance(v, float) else v) for k, v in s.items()}
            for s in samples[:: max(1, len(samples) // 60)]
        ],
    }
    text = json.dumps(summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "timeline"}, indent=1))
    if a.out:
        with open(a.out, "a") as f:
            f.write(text + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--streams", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--client-cpus", default="", help="taskset CPU list for the client workers")
    ap.add_argument("--ramp-s", type=float, default=50.0)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--delay-ms", type=float, default=35_000.0)
    ap.add_argument("--heartbeat-s", type=float, default=5.0)
    ap.add_argument("--slack-s", type=float, default=60.0)
    ap.add_argument("--gc-log", help="the server's BENCH_GC_LOG: GC pauses are reported")
    ap.add_argument("--label", default="")
    ap.add_argument("--out")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker_main(a)
    else:
        if not a.server_pid:
            ap.error("--server-pid is required")
        parent_main(a)


if __name__ == "__main__":
    main()
