"""The results: a table in the terminal, JSON, and the section of
docs/performance.md between its two markers.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

import patra

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PERFORMANCE_DOC = ROOT / "docs" / "performance.md"
START_MARKER = "<!-- bench:results:start -->"
END_MARKER = "<!-- bench:results:end -->"


def machine(postgres_version: str) -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(memory_kb / 2**20, 1),
        "postgresql": postgres_version,
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "patra": patra.__version__,
        "commit": commit or "unknown",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- targets ----------------------------------------------------------------------


def _worst(rows: list[dict], key: str) -> float:
    return max((row[key] for row in rows), default=float("nan"))


def targets(results: dict) -> list[tuple[str, str, str, bool | None]]:
    """(target, limit, measured, met) for every target of issue 4."""
    checks: list[tuple[str, str, str, bool | None]] = []
    ingest = results.get("ingest")
    if ingest:
        ten = next((row for row in ingest["levels"] if row["senders"] == 10), None)
        if ten:
            ratio = ten["http"]["per_second"] / ten["raw"]["per_second"]
            checks.append(
                (
                    "ingest at 10 senders vs raw limit",
                    ">= 0.50",
                    f"{ratio:.2f}",
                    ratio >= 0.5,
                )
            )
    live = results.get("live")
    if live:
        p99 = live["answer_to_event"]["p99_ms"]
        checks.append(("live latency p99", "< 50 ms", f"{p99:.1f} ms", p99 < 50))
    inbox = results.get("inbox")
    if inbox:
        service = inbox["service"]
        worst = _worst(service["list"], "p95_ms")
        checks.append(
            ("list p95 (worst case)", "< 50 ms", f"{worst:.1f} ms", worst < 50)
        )
        view = service["view"]["p95_ms"]
        checks.append(
            ("view p95 (500 messages)", "< 50 ms", f"{view:.1f} ms", view < 50)
        )
        worst = _worst(list(service["search"].values()), "p95_ms")
        checks.append(
            ("search p95 (worst query)", "< 150 ms", f"{worst:.1f} ms", worst < 150)
        )
        seeded = inbox["seed"]["total_s"]
        checks.append(("seeding by COPY", "< 300 s", f"{seeded:.0f} s", seeded < 300))
    memory = results.get("memory")
    if memory:
        idle = memory["serve_idle_rss_mb"]
        checks.append(
            ("patra serve idle RSS", "< 150 MB", f"{idle:.0f} MB", idle < 150)
        )
        if memory.get("serve_load_peak_rss_mb"):
            peak = memory["serve_load_peak_rss_mb"]
            checks.append(
                ("patra serve RSS under load", "< 250 MB", f"{peak:.0f} MB", peak < 250)
            )
    return checks


# --- terminal -------------------------------------------------------------------------


def _ms(summary: dict) -> str:
    return f"{summary['p50_ms']:.1f} / {summary['p95_ms']:.1f}"


def print_results(results: dict, console: Console | None = None) -> None:
    console = console or Console()
    for title, header, rows in sections(results):
        table = Table(*header, title=title, title_justify="left")
        for row in rows:
            table.add_row(*[str(cell) for cell in row])
        console.print(table)


def sections(results: dict) -> list[tuple[str, list[str], list[list]]]:
    """Every result table as (title, header, rows), for the terminal and markdown."""
    out = []
    ingest = results.get("ingest")
    if ingest:
        rows = []
        for level in ingest["levels"]:
            http, raw = level["http"], level["raw"]
            rows.append(
                [
                    level["senders"],
                    http["messages"],
                    http["per_second"],
                    raw["per_second"],
                    f"{http['per_second'] / raw['per_second']:.2f}",
                    http["server_cpu_ms_per_message"],
                    http["client_cpu_ms_per_message"],
                    http["postgres_cpu_ms_per_message"],
                    raw["client_cpu_ms_per_message"],
                    raw["postgres_cpu_ms_per_message"],
                ]
            )
        out.append(
            (
                "Ingest: messages/s, HTTP (POST /widget/N/messages) vs raw asyncpg; "
                "CPU ms per message",
                [
                    "senders",
                    "messages",
                    "HTTP msg/s",
                    "raw msg/s",
                    "HTTP/raw",
                    "HTTP: patra serve CPU",
                    "HTTP: bench client CPU",
                    "HTTP: PostgreSQL CPU",
                    "raw: client CPU",
                    "raw: PostgreSQL CPU",
                ],
                rows,
            )
        )
    ceiling = (ingest or {}).get("ceiling")
    if ceiling:
        out.append(
            (
                "HTTP ceiling: GET /healthz (no work) with the same client",
                [
                    "senders",
                    "requests",
                    "requests/s",
                    "patra serve CPU ms/req",
                    "bench client CPU ms/req",
                ],
                [
                    [
                        ceiling["senders"],
                        ceiling["requests"],
                        ceiling["per_second"],
                        ceiling["server_cpu_ms_per_message"],
                        ceiling["client_cpu_ms_per_message"],
                    ]
                ],
            )
        )
    live = results.get("live")
    if live:
        out.append(
            (
                f"Live latency at {live['rate_asked']:.0f} msg/s "
                f"({live['messages']} messages, achieved {live['rate_achieved']}/s)",
                ["interval", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                [
                    [
                        "webhook answer -> agent SSE event",
                        live["answer_to_event"]["p50_ms"],
                        live["answer_to_event"]["p95_ms"],
                        live["answer_to_event"]["p99_ms"],
                        live["answer_to_event_max_ms"],
                    ],
                    [
                        "webhook sent -> agent SSE event",
                        live["send_to_event"]["p50_ms"],
                        live["send_to_event"]["p95_ms"],
                        live["send_to_event"]["p99_ms"],
                        "",
                    ],
                    [
                        "webhook request (round trip)",
                        live["request"]["p50_ms"],
                        live["request"]["p95_ms"],
                        live["request"]["p99_ms"],
                        "",
                    ],
                    [
                        "sender lateness (server behind schedule)",
                        live["send_lateness"]["p50_ms"],
                        live["send_lateness"]["p95_ms"],
                        live["send_lateness"]["p99_ms"],
                        "",
                    ],
                ],
            )
        )
    inbox = results.get("inbox")
    if inbox:
        seed = inbox["seed"]
        service, http = inbox["service"], inbox.get("http")
        rows = []
        for position, case in enumerate(service["list"]):
            over_http = _ms(http["list"][position]) if http else "-"
            rows.append(
                [case["tab"], case["status"], case["page"], _ms(case), over_http]
            )
        out.append(
            (
                f"Conversation list at {seed['conversations']:,} conversations / "
                f"{seed['messages']:,} messages (p50 / p95 ms; service = in-process "
                "call, HTTP = GET /api/v1/conversations)",
                ["tab", "status", "page", "service", "HTTP"],
                rows,
            )
        )
        rows = [
            [
                f"{service['view']['messages']}-message conversation",
                "get_conversation + list_messages",
                _ms(service["view"]),
            ]
        ]
        if http:
            rows.append(
                [
                    "",
                    "HTTP API: conversation + messages?limit=500",
                    _ms(http["view"]["api"]),
                ]
            )
            rows.append(
                ["", "HTTP UI: full conversation page", _ms(http["view"]["ui_page"])]
            )
            for status, summary in http["ui_list"].items():
                rows.append(
                    [
                        "list pane with tab counts",
                        f"HTTP UI: /inbox/list (all, {status})",
                        _ms(summary),
                    ]
                )
        for status, summary in service.get("tab_counts", {}).items():
            rows.append(["tab counts", f"service: tab_counts({status})", _ms(summary)])
        for name, summary in service["search"].items():
            rows.append(
                [
                    f"search: {name} {summary['query']} "
                    f"({summary['hits']} messages found)",
                    "service: conversations.search",
                    _ms(summary),
                ]
            )
            if http:
                rows.append(
                    ["", "HTTP UI: /search (htmx partial)", _ms(http["search"][name])]
                )
        out.append(
            (
                "Conversation view, tab counts and search (p50 / p95 ms)",
                ["what", "measured", "p50 / p95 ms"],
                rows,
            )
        )
        out.append(
            (
                "Seeding by COPY",
                [
                    "conversations",
                    "messages",
                    "rows + text s",
                    "index build s",
                    "total s (incl. VACUUM ANALYZE)",
                ],
                [
                    [
                        f"{seed['conversations']:,}",
                        f"{seed['messages']:,}",
                        seed["copy_s"],
                        round(seed["indexes_s"] - seed["copy_s"], 1),
                        seed["total_s"],
                    ]
                ],
            )
        )
    rows = []
    memory = results.get("memory")
    if memory:
        rows += [
            [
                "patra serve on the bench database, idle after start",
                memory["serve_idle_rss_mb"],
            ],
            [
                "patra serve, peak during the ingest runs (1, 10, 50 senders)",
                memory.get("serve_load_peak_rss_mb", "-"),
            ],
            [
                "patra serve, after all benchmarks",
                memory.get("serve_after_rss_mb", "-"),
            ],
        ]
    start = results.get("start")
    if start:
        idle = start["idle"]
        rows += [
            ["patra serve (embedded PostgreSQL), idle", idle["serve_rss_mb"]],
            [
                f"embedded PostgreSQL, idle: RSS sum of {idle['postgres_processes']} "
                "processes",
                idle["postgres_rss_mb"],
            ],
            [
                "embedded PostgreSQL, idle: PSS sum (shared memory counted once)",
                idle["postgres_pss_mb"],
            ],
        ]
        load = start.get("load")
        if load:
            rows += [
                [
                    "patra serve (embedded), peak under load (10 senders)",
                    load["serve_rss_peak_mb"],
                ],
                [
                    "embedded PostgreSQL, peak RSS sum under load",
                    load["postgres_rss_peak_mb"],
                ],
                [
                    "embedded PostgreSQL, PSS sum after load",
                    load["postgres_pss_after_mb"],
                ],
            ]
    if rows:
        out.append(
            (
                "Resident memory (MB; VmRSS, child processes included)",
                ["process", "MB"],
                rows,
            )
        )
    mail = results.get("email")
    if mail:
        out.append(
            (
                "Email: patra mail import",
                [
                    "messages",
                    "mbox MB",
                    "with attachments",
                    "HTML",
                    "replies",
                    "seconds",
                    "messages/s",
                    "outcome",
                ],
                [
                    [
                        mail["messages"],
                        mail["mbox_mb"],
                        mail["attachments"],
                        mail["html"],
                        mail["replies"],
                        mail["import"]["seconds"],
                        mail.get("per_second", "-"),
                        mail["import"]["summary"]
                        or f"exit {mail['import']['exit_code']}",
                    ]
                ],
            )
        )
    start = results.get("start")
    if start:
        out.append(
            (
                "Start: patra serve to /readyz 200, embedded PostgreSQL",
                [
                    "fresh data dir (initdb + migrations) s",
                    "restart s",
                    "PostgreSQL stopped with patra serve (SIGTERM)",
                ],
                [
                    [
                        start["fresh_start_s"],
                        start["restart_s"],
                        "yes" if start.get("postgres_stopped_with_server") else "no",
                    ]
                ],
            )
        )
    checks = targets(results)
    if checks:
        out.append(
            (
                "Targets",
                ["target", "limit", "measured", "met"],
                [
                    [name, limit, measured, "yes" if met else "NO"]
                    for name, limit, measured, met in checks
                ],
            )
        )
    return out


def print_profiles(results: dict, console: Console) -> None:
    for name, profile in results.get("profiles", {}).items():
        for kind in ("inclusive", "own"):
            table = Table(
                "function (file)",
                "% of samples",
                title=f"Profile of patra serve, {name}: {kind} "
                f"({profile['samples']} samples)",
                title_justify="left",
            )
            for frame, share in profile[kind]:
                table.add_row(frame, str(share))
            console.print(table)


# --- files ---------------------------------------------------------------------------


def write_json(results: dict, name: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path


def markdown(results: dict) -> str:
    info = results["machine"]
    lines = [
        f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, "
        f"{info['ram_gb']} GB RAM; PostgreSQL {info['postgresql']}; Python "
        f"{info['python']}; {info['os']}; Patra {info['patra']} "
        f"(commit {info['commit']}); mode: {results['mode']}.",
        "",
    ]
    for title, header, rows in sections(results):
        lines += [f"### {title}", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            cells = [str(cell).replace("|", "\\|") for cell in row]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def update_performance_doc(results: dict) -> None:
    """Replace the generated section of docs/performance.md with ``results``."""
    text = PERFORMANCE_DOC.read_text()
    before, rest = text.split(START_MARKER, 1)
    _, after = rest.split(END_MARKER, 1)
    PERFORMANCE_DOC.write_text(
        f"{before}{START_MARKER}\n{markdown(results)}\n{END_MARKER}{after}"
    )
