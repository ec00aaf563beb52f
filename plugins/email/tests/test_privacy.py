"""A contact's erasure also removes the raw copies of their mail."""

from __future__ import annotations

import pytest
from corpus import raw_message
from patra import db, runtime
from patra.plugins import call_async
from patra.storage import BlobNotFound


async def test_erasing_a_contact_deletes_the_raw_messages_kept_for_download(shop):
    await shop.file(raw_message(message_id="<m1@customer.test>"))
    await shop.file(raw_message(sender="other@customer.test", message_id="<o@x.test>"))
    rows = await db.fetch(
        "SELECT sender_contact_id, metadata -> 'email' ->> 'raw_key' AS raw_key "
        "FROM message ORDER BY id"
    )
    dana, other = rows
    store = runtime.current().blobs

    await call_async(
        runtime.current().plugins.hook.erase_contact_data,
        workspace_id=shop.workspace.id,
        contact_id=dana["sender_contact_id"],
    )

    with pytest.raises(BlobNotFound):
        await store.open(dana["raw_key"])
    assert await store.open(other["raw_key"])
