"""Plugins hear of a change only once it is committed."""

import pytest

from patra import db
from patra.accounts.service import authenticate
from patra.channels import InboundMessage
from patra.hookspecs import hookimpl
from patra.inbox.conversations import assign, set_status
from patra.inbox.ingest import ingest_message


@pytest.fixture
def heard(patra_runtime):
    calls = []

    class Listener:
        @staticmethod
        @hookimpl
        def conversation_updated(conversation, changes, actor_id):
            calls.append((conversation["id"], changes))

    listener = Listener()
    patra_runtime.plugins.register(listener, name="listener")
    yield calls
    patra_runtime.plugins.unregister(listener)


async def test_a_rolled_back_change_is_never_announced(
    workspace, make_inbox, test_channel, heard
):
    inbox_id = await make_inbox("testchannel", members=[workspace.agent])
    result = await ingest_message(
        InboundMessage(inbox_id=inbox_id, contact_external_id="v", external_id="1")
    )
    owner = await authenticate(workspace.owner.email, workspace.owner.password)

    with pytest.raises(RuntimeError):
        async with db.transaction():
            await assign(owner, result.conversation_id, workspace.agent.id)
            assert heard == []  # not yet: nothing is committed
            raise RuntimeError("a later step failed")
    assert heard == []

    async with db.transaction():
        await assign(owner, result.conversation_id, workspace.agent.id)
        await set_status(owner, result.conversation_id, "pending")
        assert heard == []
    assert heard == [
        (result.conversation_id, {"assignee_id": workspace.agent.id}),
        (result.conversation_id, {"status": "pending"}),
    ]
