"""The agent's reads at scale: conversation lists, a long conversation, search.

Two measurements of each read:

* ``service``: the service call (``patra.inbox.conversations``) timed in the
  bench process against the seeded database; the server's own work.
* ``http``: the request to a running ``patra serve`` over loopback, timed at
  the client; JSON API for lists and the conversation, the agent UI for search
  (the API has no message search) and for the full conversation page.

Each is warmed up first, so the figures are for a warm cache, as on a server
that agents use all day.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx

from bench.harness import summary_ms
from bench.seed import BenchWorkspace
from bench.textgen import COMMON_WORD, PHRASE, RARE_WORD
from patra import db
from patra.accounts.service import CurrentUser, visible_inbox_ids
from patra.inbox import conversations

SEARCHES = {
    "common word": COMMON_WORD,
    "rare word": RARE_WORD,
    "phrase": f'"{PHRASE}"',
}


async def _timed(call: Callable[[], Awaitable], runs: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        await call()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await call()
        times.append(time.perf_counter() - began)
    return summary_ms(times)


async def measuring_agent(workspace: BenchWorkspace) -> CurrentUser:
    row = await db.fetchrow(
        """SELECT u.id, u.email, u.name, m.workspace_id, m.role
           FROM app_user u JOIN membership m ON m.user_id = u.id WHERE u.id = $1""",
        workspace.agent_ids[0],
    )
    return CurrentUser(**row)


async def deep_cursor(user: CurrentUser, tab: str, status: str) -> tuple[str, int]:
    """A keyset cursor half-way down the list, and how deep that is."""
    conditions = ["workspace_id = $1", "inbox_id = ANY($2::bigint[])", "status = $3"]
    args: list = [user.workspace_id, await visible_inbox_ids(user), status]
    if tab == "mine":
        args.append(user.id)
        conditions.append("assignee_id = $4")
    elif tab == "unassigned":
        conditions.append("assignee_id IS NULL")
    where = " AND ".join(conditions)
    total = await db.fetchval(f"SELECT count(*) FROM conversation WHERE {where}", *args)
    depth = total // 2
    row = await db.fetchrow(
        f"""SELECT id, last_activity_at FROM conversation WHERE {where}
            ORDER BY last_activity_at DESC, id DESC OFFSET {depth} LIMIT 1""",
        *args,
    )
    if row is None:
        return "", 0
    return conversations.encode_cursor(row), depth


async def list_cases(user: CurrentUser) -> list[dict]:
    cases = []
    for tab in conversations.TABS:
        for status in conversations.STATUSES:
            cases.append(
                {"tab": tab, "status": status, "page": "first", "cursor": None}
            )
            cursor, depth = await deep_cursor(user, tab, status)
            if cursor:
                cases.append(
                    {
                        "tab": tab,
                        "status": status,
                        "page": f"deep ({depth:,} rows in)",
                        "cursor": cursor,
                    }
                )
    return cases


async def service_times(workspace: BenchWorkspace, runs: int) -> dict:
    user = await measuring_agent(workspace)
    results: dict = {"list": [], "view": {}, "search": {}}
    for case in await list_cases(user):

        async def call(case=case):
            return await conversations.list_conversations(
                user, tab=case["tab"], status=case["status"], cursor=case["cursor"]
            )

        timing = await _timed(call, runs)
        results["list"].append({**_label(case), **timing})

    for status in ("open", "resolved"):

        async def counts(status=status):
            return await conversations.tab_counts(user, status)

        results.setdefault("tab_counts", {})[status] = await _timed(counts, runs)

    conversation_id = workspace.big_conversation_ids[0]

    async def view():
        await conversations.get_conversation(user, conversation_id)
        return await conversations.list_messages(conversation_id)

    count = len(await view())
    results["view"] = {"messages": count, **await _timed(view, runs)}
    for name, query in SEARCHES.items():
        hits = len((await conversations.search(user, query))["messages"])

        async def search(query=query):
            return await conversations.search(user, query)

        results["search"][name] = {
            "query": query,
            "hits": hits,
            **await _timed(search, runs),
        }
    return results


def _label(case: dict) -> dict:
    return {"tab": case["tab"], "status": case["status"], "page": case["page"]}


async def ui_client(base_url: str, email: str, password: str) -> httpx.AsyncClient:
    from bench.ingest import agent_client

    return await agent_client(base_url, email, password)


async def http_times(
    base_url: str, workspace: BenchWorkspace, password: str, runs: int
) -> dict:
    user = await measuring_agent(workspace)
    results: dict = {"list": [], "view": {}, "search": {}}
    api = httpx.AsyncClient(
        base_url=base_url,
        headers={"authorization": f"Bearer {workspace.api_token}"},
        timeout=30,
    )
    ui = await ui_client(base_url, workspace.agent_email, password)
    try:
        for case in await list_cases(user):
            params = {"tab": case["tab"], "status": case["status"]}
            if case["cursor"]:
                params["cursor"] = case["cursor"]

            async def call(params=params):
                response = await api.get("/api/v1/conversations", params=params)
                response.raise_for_status()

            results["list"].append({**_label(case), **await _timed(call, runs)})

        for status in ("open", "resolved"):

            async def ui_list(status=status):
                response = await ui.get(
                    "/inbox/list",
                    params={"tab": "all", "status": status},
                    headers={"hx-request": "true"},
                )
                response.raise_for_status()

            results.setdefault("ui_list", {})[status] = await _timed(ui_list, runs)

        conversation_id = workspace.big_conversation_ids[0]

        async def api_view():
            response = await api.get(f"/api/v1/conversations/{conversation_id}")
            response.raise_for_status()
            response = await api.get(
                f"/api/v1/conversations/{conversation_id}/messages",
                params={"limit": 500},
            )
            response.raise_for_status()

        async def ui_view():
            response = await ui.get(f"/inbox/conversations/{conversation_id}")
            response.raise_for_status()

        results["view"] = {
            "api": await _timed(api_view, runs),
            "ui_page": await _timed(ui_view, runs),
        }
        for name, query in SEARCHES.items():

            async def search(query=query):
                response = await ui.get(
                    "/search", params={"q": query}, headers={"hx-request": "true"}
                )
                response.raise_for_status()

            results["search"][name] = {"query": query, **await _timed(search, runs)}
    finally:
        await api.aclose()
        await ui.aclose()
    return results


async def load_page(
    base_url: str, workspace: BenchWorkspace, password: str, runs: int
) -> None:
    """Request the long conversation's page ``runs`` times (for ``--profile``)."""
    ui = await ui_client(base_url, workspace.agent_email, password)
    try:
        for _ in range(runs):
            response = await ui.get(
                f"/inbox/conversations/{workspace.big_conversation_ids[0]}"
            )
            response.raise_for_status()
    finally:
        await ui.aclose()
