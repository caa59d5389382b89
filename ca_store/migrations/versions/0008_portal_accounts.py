"""portal: browser sign-ins (accounts with scrypt password hashes), which account owns which PSP, and
server-side sessions (only the SHA-256 of the cookie's random id)

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('portal_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('portal_account_orgs',
    sa.Column('org_id', sa.String(length=128), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['portal_accounts.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['psp_authorisations.org_id'], ),
    sa.PrimaryKeyConstraint('org_id')
    )
    with op.batch_alter_table('portal_account_orgs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_account_orgs_account_id'), ['account_id'], unique=False)
    op.create_table('portal_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['portal_accounts.id'], ),
    sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_hash')
    )
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_sessions_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_portal_sessions_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_sessions_expires_at'))
        batch_op.drop_index(batch_op.f('ix_portal_sessions_account_id'))
    op.drop_table('portal_sessions')
    with op.batch_alter_table('portal_account_orgs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_account_orgs_account_id'))
    op.drop_table('portal_account_orgs')
    op.drop_table('portal_accounts')
