"""Persistence: SQLAlchemy 2.0 models, repositories (never commit on their own), migrations."""
