"""simulator: responder behaviours and trusted lists

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('responder_behaviours',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer_id', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=8), nullable=False),
    sa.Column('scope', sa.String(length=42), nullable=False),
    sa.Column('behaviour', sa.String(length=32), nullable=False),
    sa.Column('delay_ms', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['issuer_id'], ['certificate_authorities.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issuer_id', 'target', 'scope', name='uq_responder_behaviour')
    )
    with op.batch_alter_table('responder_behaviours', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_responder_behaviours_issuer_id'), ['issuer_id'], unique=False)

    op.create_table('trusted_lists',
    sa.Column('sequence', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('services_hash', sa.String(length=64), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_update', sa.DateTime(timezone=True), nullable=False),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('sequence')
    )
    op.create_table('trusted_list_signers',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=False),
    sa.Column('cert_der', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['key_references.id'], ),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('trusted_list_signers')
    op.drop_table('trusted_lists')
    with op.batch_alter_table('responder_behaviours', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_responder_behaviours_issuer_id'))
    op.drop_table('responder_behaviours')
