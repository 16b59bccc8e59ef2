"""Print bench/s5.py's JSON lines (one per target) as a Markdown table, ratios against fastapi."""

from __future__ import annotations

import json
import sys


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return ""
    return f" ({value / base:.2f}x)"


def gc_text(gc: dict[str, float] | None) -> str:
    if not gc:
        return "-"
    return f"{gc['pauses']}, {gc['max_ms']:.0f} ({gc['gen2']}, max {gc['gen2_max_ms']:.0f})"


def main(path: str) -> None:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    base = next((r for r in rows if r["label"].startswith("fastapi")), None)
    print(
        "| target | streams admitted / served / opened | live at peak | RSS MB idle → peak"
        " (x fastapi) | KB/stream (x fastapi) | threads idle / 500 / 2000 / peak / after"
        " | fds idle / max | ping late p50 / p99 / max ms | ping late p99 once all admitted"
        " | event late p99 ms"
        " | admission CPU µs (x fastapi) | time to headers p50 / p99 ms"
        " | GC pauses >= 2 ms: count, max ms (full collections) | errors |"
    )
    print("|---|---|---:|---|---|---|---|---|---:|---:|---|---|---|---|")
    for r in rows:
        p = r["params"]
        t = r["threads_at_live"]
        pl = r["ping_late_ms"]
        b = base if base is not r else None
        print(
            f"| {r['label']} | {r['admitted']:,} / {r['served']:,} / {r['opened']:,} of"
            f" {p['streams']:,} | {r.get('live_peak_client', r['live_peak'])}"
            f" | {r['rss_mb']['idle']} → {r['rss_mb']['peak_live']}"
            f"{ratio(r['rss_mb']['peak_live'], b and b['rss_mb']['peak_live'])}"
            f" | {r['kb_per_stream']}{ratio(r['kb_per_stream'], b and b['kb_per_stream'])}"
            f" | {r['threads']['idle']} / {t.get('500') or '-'} / {t.get('2000') or '-'}"
            f" / {r['threads']['max']} / {r['threads']['after']}"
            f" | {r['fds']['idle']} / {r['fds']['max']}"
            f" | {pl['p50']} / {pl['p99']} / {pl['max']} ({r['pings']:,} pings)"
            f" | {r.get('ping_late_all_admitted_ms', {}).get('p99')}"
            f" | {r['event_late_ms']['p99']}"
            f" | {r['admission_cpu_us']}{ratio(r['admission_cpu_us'], b and b['admission_cpu_us'])}"
            f" | {r['admit_ms']['p50']} / {r['admit_ms']['p99']}"
            f" | {gc_text(r.get('gc'))}"
            f" | {r['errors'] or 'none'} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
