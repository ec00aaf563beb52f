"""The Piccolo tables describe the schema the migrations create."""

from patra import db
from patra.tables import CORE_TABLES, AppUser


async def test_piccolo_tables_match_the_migrated_schema(clean_db):
    for table in CORE_TABLES:
        name = table._meta.tablename
        rows = await db.fetch(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name = $1""",
            name,
        )
        in_database = {row["column_name"] for row in rows} - {"search"}
        declared = {column._meta.db_column_name for column in table._meta.columns}
        assert declared == in_database, f"{name}: {declared ^ in_database}"


async def test_piccolo_queries_join_the_current_transaction(workspace):
    """A row written with raw SQL is visible to Piccolo before commit, and gone
    after rollback: both use the same connection."""

    class Rollback(Exception):
        pass

    try:
        async with db.transaction():
            await db.execute(
                "INSERT INTO app_user (email, name, password_hash) "
                "VALUES ('new@example.test', 'New', 'x')"
            )
            assert await AppUser.count() == 4
            raise Rollback
    except Rollback:
        pass
    assert await AppUser.count() == 3
