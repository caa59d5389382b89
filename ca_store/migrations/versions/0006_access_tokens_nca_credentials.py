"""access: API tokens expire and may be scoped; NCA credentials keep their chain and their certificate row;
NCA status queries are single-use

Revision ID: 0006
Revises: 0005

Tokens made before this migration expire 90 days after it runs (none stays eternal, none is cut off at once).
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('scope', sa.Text(), nullable=True))
    expires = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=90)
    op.get_bind().execute(sa.text("UPDATE api_tokens SET expires_at = :at WHERE expires_at IS NULL"), {"at": expires})
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('expires_at', existing_type=sa.DateTime(timezone=True), nullable=False)

    with op.batch_alter_table('nca_credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('intermediates_pem', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('anchor_der', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('certificate_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_nca_credentials_certificate_id', 'certificates', ['certificate_id'], ['id'])

    op.create_table('nca_status_queries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('nca_id', sa.String(length=16), nullable=False),
    sa.Column('jti', sa.String(length=128), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['nca_id'], ['ncas.nca_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('nca_id', 'jti', name='uq_nca_status_query')
    )
    with op.batch_alter_table('nca_status_queries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nca_status_queries_seen_at'), ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('nca_status_queries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nca_status_queries_seen_at'))
    op.drop_table('nca_status_queries')
    with op.batch_alter_table('nca_credentials', schema=None) as batch_op:
        batch_op.drop_constraint('fk_nca_credentials_certificate_id', type_='foreignkey')
        batch_op.drop_column('certificate_id')
        batch_op.drop_column('anchor_der')
        batch_op.drop_column('intermediates_pem')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('scope')
        batch_op.drop_column('expires_at')
