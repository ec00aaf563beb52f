"""The plugin contract: every hook Patra calls, grouped by what it is for.

Conventions that hold for every hook:

* Hooks are registered explicitly through the ``patra`` entry-point group; a
  plugin module marks its implementations with :data:`hookimpl`.
* An implementation may be a plain function or an ``async def``. The core
  awaits any awaitable a hook returns, so choose whichever fits the work.
* Unless a hook says "first result wins", the core collects one result per
  plugin, in reverse registration order, skipping ``None``.
* Every hook was added in version 0.1 unless its docstring says otherwise.

Each hook has a section in ``docs/plugins/hooks.md``; a test fails when one is
missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from patra.channels import ChannelType
    from patra.config import Config

hookspec = pluggy.HookspecMarker("patra")
hookimpl = pluggy.HookimplMarker("patra")


# --- Lifecycle -------------------------------------------------------------


@hookspec
def plugin_settings_schema() -> tuple[str, type] | None:
    """Declare the dataclass that validates this plugin's ``[plugins.NAME]`` table.

    Return ``(name, dataclass)``. At start-up the core checks the table against
    the dataclass's typed fields and refuses to start, naming the key, when a
    value does not fit. The validated instance is available as
    ``config.plugin_settings(name)`` afterwards.
    """


@hookspec
def register_migrations() -> list[tuple[str, Path]] | None:
    """Contribute folders of ``NNNN_name.sql`` migrations as ``(namespace, path)``.

    Each file is applied once, in name order, by ``patra migrate`` and at
    ``patra serve``. Use your plugin's name as the namespace.
    """


@hookspec
def startup(app: Any, config: Config) -> None:
    """Called once when the web application starts, after the database is open."""


@hookspec
def shutdown(app: Any) -> None:
    """Called once when the web application stops, before the database closes."""


@hookspec
def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add sub-commands to the ``patra`` command line.

    Call ``subparsers.add_parser(...)`` and set ``func`` with
    ``parser.set_defaults(func=...)``. The core builds the runtime (so
    ``patra.runtime.current()`` works), then calls ``func(args, config)``; when
    it returns an awaitable, the core awaits it with the database pool open and
    migrations applied. Return an exit code or ``None``.
    """


@hookspec
def register_jobs(jobs_app: Any) -> None:
    """Register procrastinate tasks on the shared job app (``@jobs_app.task``).

    Tasks run in ``patra serve`` or ``patra worker`` and share the core's retry
    and logging conventions.
    """


# --- Channels --------------------------------------------------------------


@hookspec
def register_channel_types() -> list[type[ChannelType]] | None:
    """Return :class:`patra.channels.ChannelType` subclasses this plugin provides.

    Each class declares its ``name`` (unique across plugins), its settings
    fields (which ones are secret), its capabilities, and implements ``send``
    and optionally ``run_receiver``.
    """


# --- Storage ---------------------------------------------------------------


@hookspec
def register_blob_stores(config: Config) -> dict[str, Any] | None:
    """Return ``{name: BlobStore}`` of stores this plugin offers.

    A store implements the async ``put(key, data)``, ``open(key)``,
    ``delete(key)`` and ``size(key)`` of :class:`patra.storage.BlobStore`.
    ``[storage] backend`` chooses which one Patra uses.
    """


# --- AI --------------------------------------------------------------------


@hookspec
def register_ai_providers(config: Config) -> dict[str, Any] | None:
    """Return ``{name: AIProvider}`` of reply-suggestion providers.

    A provider implements async ``suggest_replies``, ``summarize`` and
    ``rewrite`` of :class:`patra.ai.AIProvider`. ``[ai] provider`` chooses one.
    """


# --- Events ----------------------------------------------------------------


@hookspec
def message_received(message: dict[str, Any], conversation: dict[str, Any]) -> None:
    """A customer's message was stored (after commit). Not called for duplicates."""


@hookspec
def message_sent(message: dict[str, Any]) -> None:
    """A channel accepted an agent's message (after the status became ``sent``)."""


@hookspec
def conversation_created(conversation: dict[str, Any]) -> None:
    """A new conversation was opened by an inbound message or an agent."""


@hookspec
def conversation_updated(
    conversation: dict[str, Any], changes: dict[str, Any], actor_id: int | None
) -> None:
    """Status, assignee, labels or snooze changed; ``changes`` maps field to value."""


@hookspec
def message_moved(
    message: dict[str, Any], from_conversation_id: int, to_conversation_id: int
) -> None:
    """An agent moved a message to another conversation (threading guessed wrong).

    Called inside the move's transaction, so a plugin can move what it keeps
    about the message (the email channel moves its Message-IDs) atomically.
    """


@hookspec
def contact_erased(workspace_id: int, contact_id: int) -> None:
    """A contact and their messages were erased at someone's request."""


# --- Privacy ---------------------------------------------------------------


@hookspec
def export_contact_data(workspace_id: int, contact_id: int) -> dict[str, Any] | None:
    """Return the personal data this plugin holds on a contact, JSON-serialisable.

    The core adds the result under the plugin's name in the contact's export.
    """


@hookspec
def erase_contact_data(workspace_id: int, contact_id: int) -> None:
    """Delete the personal data this plugin holds on a contact.

    Called inside the erasure's database transaction, before the core deletes
    the contact; raise to abort the erasure.
    """


# --- Web -------------------------------------------------------------------


@hookspec
def register_routes() -> list[Any] | None:
    """Return Litestar route handlers, controllers or routers to mount.

    Routes are mounted at the paths they declare. Use ``/webhooks/NAME/...``
    for provider callbacks and opt out of CSRF with
    ``opt={"exclude_from_csrf": True}`` only where another check replaces it.
    """


@hookspec
def register_template_dirs() -> list[Path] | None:
    """Folders of Jinja templates, searched after the active theme's."""


@hookspec
def register_static_dirs() -> list[tuple[str, Path]] | None:
    """``(name, folder)`` pairs served under ``/static/plugins/NAME/``."""


@hookspec
def menu_links(user: dict[str, Any]) -> list[dict[str, str]] | None:
    """Links for the navigation: ``{"href": ..., "label": ...}``.

    ``user`` carries ``id``, ``name`` and ``role``; return only links that
    user may follow.
    """


@hookspec
def inbox_setup_hints(inbox: dict[str, Any], public_url: str) -> str | None:
    """HTML shown on an inbox's settings page, such as an embed snippet.

    Return ``None`` for inboxes of other channel types. The value is inserted
    as markup: escape anything that came from a user.
    """
