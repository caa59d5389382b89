"""Declarative key ceremonies: one YAML file per ceremony, strict validation, witnessed steps,
a custodian quorum for backups, and a hash-chained, signed transcript (after Boulder's
``cmd/ceremony``). ``runner.validate`` / ``runner.run`` run one; ``transcript.verify`` checks a
transcript; ``report.render`` writes it up; ``importer.import_hierarchy`` hands the result to qtsp.
"""

from importlib import resources
from pathlib import Path


def examples_dir() -> Path:
    """The example ceremony files shipped with the package."""
    return Path(str(resources.files(__name__) / "examples"))
