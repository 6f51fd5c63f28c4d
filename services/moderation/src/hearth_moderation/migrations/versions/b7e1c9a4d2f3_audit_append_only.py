"""audit records append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)

Revision ID: b7e1c9a4d2f3
Revises: 72c0bef0802c
Create Date: 2026-12-04 23:20:00

The hash chain makes a change detectable; these triggers make the ordinary ways to change a
record fail at the database, whoever the caller is. Only a role that may alter the table (its
owner, a superuser) can switch them off: `ALTER TABLE audit_records DISABLE TRIGGER ...` on
PostgreSQL, `DROP TRIGGER` on SQLite. Nothing in moderation updates or deletes audit records.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b7e1c9a4d2f3"
down_revision: str | Sequence[str] | None = "72c0bef0802c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "audit_records is append-only"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_records_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    """Refuse UPDATE and DELETE on audit_records (and TRUNCATE on PostgreSQL)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_records_no_update_delete BEFORE UPDATE OR DELETE ON "
            "audit_records FOR EACH ROW EXECUTE FUNCTION audit_records_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_records_refuse_change()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_records_no_{verb.lower()} BEFORE {verb} ON audit_records "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: {verb} refused'); END"
            )


def downgrade() -> None:
    """Drop the triggers."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_truncate ON audit_records")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_update_delete ON audit_records")
        op.execute("DROP FUNCTION IF EXISTS audit_records_refuse_change()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_delete")
