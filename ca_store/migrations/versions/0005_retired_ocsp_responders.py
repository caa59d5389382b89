"""retired OCSP responders: kept after a key rotation, for answers as of a time within their validity

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('retired_ocsp_responders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer_id', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=False),
    sa.Column('cert_der', sa.LargeBinary(), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['issuer_id'], ['certificate_authorities.id'], ),
    sa.ForeignKeyConstraint(['key_id'], ['key_references.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('retired_ocsp_responders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retired_ocsp_responders_issuer_id'), ['issuer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('retired_ocsp_responders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retired_ocsp_responders_issuer_id'))
    op.drop_table('retired_ocsp_responders')
