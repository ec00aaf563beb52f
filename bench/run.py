"""Run Patra's benchmark suite: ``python -m bench [--quick] [--embedded]``.

Creates a database of its own (``patra_bench_*`` on PATRA_BENCH_DATABASE_URL,
default postgresql://postgres@127.0.0.1:5432/postgres, or on an embedded
server with ``--embedded``), seeds it, runs every benchmark, prints the
results, writes them to bench/results/ and, for a full run, into
docs/performance.md. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from bench import harness, inbox, ingest, mailimport, report, seed, startup
from patra import db, migrate
from patra.config import Config
from patra.plugins import installed_plugins

console = Console(stderr=True)
BENCHMARKS = ("inbox", "ingest", "live", "email", "start")
# Ingest and live latency post to the web chat widget; email runs its import.
NEEDED_PLUGINS = {
    "ingest": "webchat",
    "live": "webchat",
    "email": "email",
}

# Limits that keep the widget's abuse protection out of the measurement.
WEBCHAT_LIMITS = """
[plugins.webchat]
visitor_messages_per_minute = 10000
ip_writes_per_minute = 100000
ip_sessions_per_hour = 100000
"""


@dataclass(frozen=True)
class Sizes:
    conversations: int
    messages: int
    ingest_messages: dict[int, int]
    live_rate: float
    live_seconds: float
    runs: int
    mbox_messages: int
    embedded_load: int


FULL = Sizes(
    100_000, 1_000_000, {1: 600, 10: 3000, 50: 3000}, 100, 20, 30, 10_000, 1500
)
QUICK = Sizes(5_000, 50_000, {1: 100, 10: 400, 50: 500}, 100, 3, 8, 300, 200)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for development"
    )
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="run on an embedded PostgreSQL instead of PATRA_BENCH_DATABASE_URL",
    )
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="leave docs/performance.md unchanged"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample patra serve with py-spy during the 10-sender ingest and the "
        "conversation page; stacks go to bench/results/profile-*.txt",
    )
    parser.add_argument(
        "--output",
        help="file name under bench/results/ (default latest.json, "
        "or quick.json with --quick)",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="keep the bench database afterwards (to look at query plans)",
    )
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    installed = {plugin.name for plugin in installed_plugins()}
    for benchmark, plugin in NEEDED_PLUGINS.items():
        if benchmark in args.only and plugin not in installed:
            parser.error(
                f"the {benchmark} benchmark needs the {plugin} plugin; install it "
                f"with `pip install -e plugins/{plugin}` or leave it out with --only."
            )
    return args


def bench_config(
    url: str, workdir: Path, secret_key: str, plugins: list[str]
) -> Config:
    config = Config()
    config.database.url = url
    config.server.secret_key = secret_key
    config.server.data_dir = str(workdir / "data")
    config.plugins.enabled = plugins
    config.source = "bench configuration"
    return config


async def run_suite(args: argparse.Namespace) -> dict:
    sizes = QUICK if args.quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="patra-bench-"))
    # Registered first, so it runs last: after an embedded server has stopped.
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    if args.embedded:
        server_url = db.start_embedded(workdir / "main-pg")
    else:
        server_url = os.environ.get(
            "PATRA_BENCH_DATABASE_URL", harness.DEFAULT_SERVER_URL
        )
    plugins = [plugin.name for plugin in installed_plugins() if not plugin.default]
    secret_key = secrets.token_urlsafe(48)
    name, url = await harness.create_database(server_url)
    console.log(f"Database {name} on {server_url.split('@')[-1]}; work dir {workdir}")
    results: dict = {"mode": "quick" if args.quick else "full", "sizes": asdict(sizes)}
    results["mode"] += (
        ", embedded PostgreSQL" if args.embedded else ", external PostgreSQL"
    )
    try:
        from patra.runtime import build

        runtime = build(bench_config(url, workdir, secret_key, plugins))
        await db.open_pool()
        await migrate.migrate(runtime.plugins, runtime.jobs)
        version = await db.fetchval("SHOW server_version")
        results["machine"] = report.machine(version.split()[0])
        workspace = await seed.create_workspace()
        settings = harness.ServerSettings(
            workdir=workdir,
            secret_key=secret_key,
            database_url=url,
            plugins=plugins,
            extra_toml=WEBCHAT_LIMITS if "webchat" in plugins else "",
        )
        await _run_selected(args, sizes, url, workspace, settings, results)
    finally:
        await db.close_pool()
        if args.keep_database and not args.embedded:
            console.log(f"Kept the database: {url}")
        else:
            await harness.drop_database(server_url, name)
    return results


async def _run_selected(args, sizes, url, workspace, settings, results) -> None:
    if "inbox" in args.only:
        console.log(
            f"Seeding {sizes.conversations:,} conversations, "
            f"{sizes.messages:,} messages by COPY"
        )
        timings = await seed.seed_history(
            url, workspace, sizes.conversations, sizes.messages
        )
        results["inbox"] = {
            "seed": {
                "conversations": sizes.conversations,
                "messages": sizes.messages,
                **timings,
            },
        }
        console.log(f"Seeded in {timings['total_s']} s; timing service calls")
        results["inbox"]["service"] = await inbox.service_times(workspace, sizes.runs)

    server = harness.PatraServer(settings)
    needs_server = {"inbox", "ingest", "live"} & set(args.only)
    if needs_server:
        await asyncio.to_thread(server.start)
        await asyncio.sleep(startup.SETTLE_SECONDS)
        results["memory"] = {
            "serve_idle_rss_mb": round(harness.rss_mb(server.pids()), 1)
        }
    try:
        if "inbox" in args.only:
            console.log("Timing the same reads over HTTP")
            results["inbox"]["http"] = await inbox.http_times(
                server.url, workspace, seed.BENCH_PASSWORD, sizes.runs
            )
            profile = _profile(args, server, "conversation-page")
            if profile:
                with profile:
                    await inbox.load_page(
                        server.url, workspace, seed.BENCH_PASSWORD, sizes.runs
                    )
                results.setdefault("profiles", {})["conversation_page"] = profile.top()
        if "ingest" in args.only:
            results["ingest"] = await _ingest(
                args, sizes, url, workspace, server, results
            )
        if "live" in args.only:
            console.log(f"Live latency at {sizes.live_rate:.0f} messages/s")
            results["live"] = await ingest.live_latency(
                server.url,
                workspace.webchat_inbox_id,
                workspace.agent_email,
                seed.BENCH_PASSWORD,
                sizes.live_rate,
                sizes.live_seconds,
            )
        if needs_server:
            results["memory"]["serve_after_rss_mb"] = round(
                harness.rss_mb(server.pids()), 1
            )
    finally:
        await asyncio.to_thread(server.stop)

    if "email" in args.only:
        results["email"] = await _email(sizes, workspace, server, settings.workdir)
    if "start" in args.only:
        console.log("Start time with the embedded PostgreSQL")
        results["start"] = await startup.embedded_start(
            settings, sizes.embedded_load, with_load="webchat" in settings.plugins
        )


def _profile(args, server, name: str) -> harness.Profile | None:
    if not args.profile:
        return None
    report.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return harness.Profile(
        server.process.pid, report.RESULTS_DIR / f"profile-{name}.txt"
    )


async def _ingest(args, sizes, url, workspace, server, results) -> dict:
    levels = []
    peak = 0.0
    cluster = await harness.cluster_pids_of(url)
    postmaster = cluster[0] if cluster else None

    def postgres_pids() -> list[int]:
        return harness.process_tree(postmaster) if postmaster else []

    for senders, count in sizes.ingest_messages.items():
        plan = ingest.make_plan(senders, count)
        console.log(f"Ingest: {plan.messages} messages, {senders} senders (raw, HTTP)")
        raw = await ingest.raw_ingest(
            url, workspace.id, workspace.webchat_inbox_id, plan, postgres_pids
        )
        profile = _profile(args, server, "ingest-http") if senders == 10 else None
        with harness.MemorySampler(server.pids) as sampler, profile or nullcontext():
            http = await ingest.http_ingest(
                server.url, workspace.webchat_inbox_id, plan, server.pids, postgres_pids
            )
        if profile:
            results.setdefault("profiles", {})["ingest_http_10_senders"] = profile.top()
        peak = max(peak, sampler.peak)
        levels.append(
            {
                "senders": senders,
                "http": http,
                "raw": raw,
                "serve_rss_peak_mb": round(sampler.peak, 1),
            }
        )
    results["memory"]["serve_load_peak_rss_mb"] = round(peak, 1)
    console.log("HTTP ceiling: GET /healthz with 10 senders")
    ceiling = await ingest.http_ceiling(
        server.url, 10, sizes.ingest_messages[10], server.pids
    )
    return {"levels": levels, "ceiling": ceiling}


async def _email(sizes, workspace, server, workdir: Path) -> dict:
    mbox = workdir / "bench.mbox"
    server.write_config()
    console.log(f"Writing an mbox of {sizes.mbox_messages:,} messages")
    mix = await asyncio.to_thread(
        mailimport.write_mbox, mbox, sizes.mbox_messages, "support@bench.example"
    )
    console.log("Running patra mail import")
    outcome = await asyncio.to_thread(
        mailimport.run_import,
        server.command(),
        workspace.email_inbox_name,
        mbox,
        workdir / "mail-import.log",
    )
    result = {**mix, "import": outcome}
    if outcome["exit_code"] == 0:
        result["per_second"] = round(mix["messages"] / outcome["seconds"], 1)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    began = time.perf_counter()
    results = asyncio.run(run_suite(args))
    results["suite_seconds"] = round(time.perf_counter() - began, 1)
    report.print_results(results, Console())
    report.print_profiles(results, Console())
    name = args.output or ("quick.json" if args.quick else "latest.json")
    path = report.write_json(results, name)
    console.log(f"Results written to {path}")
    if not args.quick and not args.no_docs and set(args.only) == set(BENCHMARKS):
        report.update_performance_doc(results)
        console.log(f"Updated {report.PERFORMANCE_DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
