"""payment: how it was paid, refunds and corrections as new rows, discounts and waivers; account codes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:00:00.000000

- `payment` gains `method` (cash, card terminal, campus card, internal transfer to an account code,
  waiver; NULL for payments recorded before methods existed), `account_code`, `kind` (the pickup's
  CHARGE, a REFUND, a CORRECTION, or the REVERSAL a revert writes), `reason`, `list_usd` and
  `discount_usd` (the price before a discount or waiver, and what was taken off), `refund_of`
  (the payment a refund, correction or reversal is about: an indexed id, deliberately not a
  foreign key to its own table — SQLite checks such a key row by row against the copy while it
  rebuilds the table, which made this migration quadratic: minutes for 50,000 payments).
- Payments become append-only like the events: a refund, a correction or a revert is a new row
  with its own (usually negative) amount, and a job's balance is the sum of its rows. The database
  refuses UPDATE and DELETE, except the personal-data prune clearing `picked_up_by`.
- A payment voided by a revert before this migration becomes a REVERSAL row (the negative amount,
  the void's time and reason, recorded under the original payment's staff name, since the void did
  not record who made it); `voided_at` and `void_reason` are dropped.
- `account_code`: the department, course and grant codes an admin keeps, which an internal
  transfer must name.
"""

# SQL below is built from this file's constants only, never from input.

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

METHODS = ("CASH", "CARD", "CAMPUS_CARD", "ACCOUNT", "WAIVER")
KINDS = ("CHARGE", "REFUND", "CORRECTION", "REVERSAL")
APPEND_ONLY_MESSAGE = "payment rows are append-only"
#: Columns a payment keeps for ever; only `picked_up_by` may be cleared (the personal-data prune).
FIXED_COLUMNS = (
    "id",
    "job_id",
    "weighed_g",
    "quoted_usd",
    "charged_usd",
    "kept_quote",
    "payment_reference",
    "recorded_by",
    "workstation_id",
    "recorded_at",
    "method",
    "account_code",
    "kind",
    "reason",
    "list_usd",
    "discount_usd",
    "refund_of",
)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.create_table(
        "account_code",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_account_code")),
    )
    # Voids are set aside, the table is rebuilt (SQLite), then they come back as reversal rows: a
    # row that refers to another payment can't be in the table while SQLite rebuilds it.
    op.execute(
        "CREATE TABLE payment_void_0010 AS SELECT id, voided_at, void_reason FROM payment WHERE voided_at IS NOT NULL"
    )
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("method", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("account_code", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("kind", sa.String(length=20), nullable=False, server_default="CHARGE"))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("list_usd", sa.Numeric(precision=8, scale=2), nullable=True))
        batch_op.add_column(sa.Column("discount_usd", sa.Numeric(precision=8, scale=2), nullable=True))
        batch_op.add_column(sa.Column("refund_of", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_payment_account_code_account_code"), "account_code", ["account_code"], ["code"]
        )
        batch_op.create_check_constraint(
            op.f("ck_payment_method"), f"method IS NULL OR method IN ({_quoted(METHODS)})"
        )
        batch_op.create_check_constraint(op.f("ck_payment_kind"), f"kind IN ({_quoted(KINDS)})")
        batch_op.create_index(batch_op.f("ix_payment_account_code"), ["account_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_payment_refund_of"), ["refund_of"], unique=False)
        batch_op.drop_column("voided_at")
        batch_op.drop_column("void_reason")
    op.execute(
        "INSERT INTO payment (job_id, quoted_usd, charged_usd, kept_quote, recorded_by, workstation_id, "
        "recorded_at, kind, reason, refund_of) "
        "SELECT p.job_id, p.quoted_usd, -p.charged_usd, p.kept_quote, p.recorded_by, p.workstation_id, "
        "v.voided_at, 'REVERSAL', v.void_reason, p.id FROM payment p JOIN payment_void_0010 v ON v.id = p.id "
        "ORDER BY p.id"
    )
    op.drop_table("payment_void_0010")
    _make_payments_append_only()


def _make_payments_append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FIXED_COLUMNS)
        op.execute(
            f"""
            CREATE FUNCTION printlab_payment_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND NOT ({changed})
                   AND (NEW.picked_up_by IS NULL OR NEW.picked_up_by IS NOT DISTINCT FROM OLD.picked_up_by) THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION '%: % on payment refused', '{APPEND_ONLY_MESSAGE}', TG_OP
                    USING ERRCODE = 'restrict_violation';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER payment_append_only BEFORE UPDATE OR DELETE ON payment "
            "FOR EACH ROW EXECUTE FUNCTION printlab_payment_append_only()"
        )
        op.execute(
            "CREATE TRIGGER payment_no_truncate BEFORE TRUNCATE ON payment "
            "FOR EACH STATEMENT EXECUTE FUNCTION printlab_refuse_change()"
        )
    else:
        raise_ = f"SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}: UPDATE on payment refused')"
        op.execute(
            f"CREATE TRIGGER payment_no_update BEFORE UPDATE OF {', '.join(FIXED_COLUMNS)} ON payment "
            f"BEGIN {raise_}; END"
        )
        op.execute(
            "CREATE TRIGGER payment_only_clears_collector BEFORE UPDATE OF picked_up_by ON payment "
            f"WHEN NEW.picked_up_by IS NOT NULL AND NEW.picked_up_by IS NOT OLD.picked_up_by BEGIN {raise_}; END"
        )
        op.execute(
            "CREATE TRIGGER payment_no_delete BEFORE DELETE ON payment "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}: DELETE on payment refused'); END"
        )


def _drop_append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS payment_no_truncate ON payment")
        op.execute("DROP TRIGGER IF EXISTS payment_append_only ON payment")
        op.execute("DROP FUNCTION IF EXISTS printlab_payment_append_only()")
    else:
        for name in ("payment_no_update", "payment_only_clears_collector", "payment_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def downgrade() -> None:
    _drop_append_only()
    # A reversal voids the payment it reverses again; refunds and corrections can't be expressed.
    op.execute(
        "CREATE TABLE payment_void_0010 AS SELECT refund_of AS id, recorded_at AS voided_at, reason AS void_reason "
        "FROM payment WHERE kind = 'REVERSAL' AND refund_of IS NOT NULL"
    )
    op.execute("DELETE FROM payment WHERE kind <> 'CHARGE'")
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voided_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("void_reason", sa.Text(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_payment_account_code"))
        batch_op.drop_constraint(op.f("ck_payment_kind"), type_="check")
        batch_op.drop_constraint(op.f("ck_payment_method"), type_="check")
        batch_op.drop_index(batch_op.f("ix_payment_refund_of"))
        batch_op.drop_constraint(batch_op.f("fk_payment_account_code_account_code"), type_="foreignkey")
        for column in ("refund_of", "discount_usd", "list_usd", "reason", "kind", "account_code", "method"):
            batch_op.drop_column(column)
    op.execute(
        "UPDATE payment SET voided_at = (SELECT v.voided_at FROM payment_void_0010 v WHERE v.id = payment.id), "
        "void_reason = (SELECT v.void_reason FROM payment_void_0010 v WHERE v.id = payment.id) "
        "WHERE id IN (SELECT id FROM payment_void_0010)"
    )
    op.drop_table("payment_void_0010")
    op.drop_table("account_code")
