async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ok"}


async def test_test_channel_is_available(make_inbox, test_channel):
    inbox_id = await make_inbox("testchannel", token="secret-value")
    assert inbox_id > 0
