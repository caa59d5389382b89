"""``qtsp scenarios matrix`` against a served sandbox: the catalogue issued once (``scenarios.issue``), served
by ``qtsp serve`` on loopback, and the matrix read with ``--manifest DIR --connect-to 127.0.0.1:PORT`` (OCSP
and CRLs over HTTP, as a bank's gateway would fetch them) must equal the matrix from the sandbox's responder
in process; a manifest that points outside its directory is refused; the HTML page escapes what it shows."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from qtsp.clock import as_of
from qtsp.services import scenarios
from qtsp.services.context import Sandbox
from support.loopback import Served, served_sandbox


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    work = tmp_path_factory.mktemp("matrix")

    def issue_catalogue(sandbox: Sandbox, _data_dir: Path) -> None:
        scenarios.issue(sandbox, None, work / "catalogue")

    with served_sandbox(work, "crl_debounce_seconds = 0\n", prepare=issue_catalogue) as s:
        yield s, work / "catalogue"


def matrix(data_dir: Path, *args: Any, code: int = 0) -> Any:
    with as_of(None):
        result = CliRunner().invoke(cli, ["scenarios", "matrix", "--data-dir", str(data_dir), "--json", *map(str, args)],
                                    catch_exceptions=False)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout if code == 0 else result.stderr)


def _cells(m: dict[str, Any]) -> dict[str, dict[str, tuple[str, str | None]]]:
    return {r["name"]: {k: (v["verdict"], (v["deciding"] or {}).get("code")) for k, v in r["results"].items()}
            for r in m["scenarios"]}


def test_over_http_the_matrix_is_the_one_in_process(served: tuple[Served, Path]) -> None:
    s, catalogue = served
    over_http = matrix(s.data_dir, "--manifest", catalogue, "--connect-to", s.url.removeprefix("http://"))
    in_process = matrix(s.data_dir, "--manifest", catalogue)
    assert _cells(over_http) == _cells(in_process)
    assert all(r["strict_as_expected"] for r in over_http["scenarios"])
    cells = _cells(over_http)
    assert cells["revoked-key-compromise"]["chain-only"] == ("accept", None)
    assert cells["revoked-key-compromise"]["chain+revocation"] == ("reject", "revoked")
    assert len(cells) == len(scenarios.CATALOGUE)
    # The answers really come from where --connect-to says: nobody listening there, no revocation status,
    # which the models that check revocation refuse and the others do not notice.
    from support.server import free_port

    nowhere = _cells(matrix(s.data_dir, "--manifest", catalogue, "--connect-to", f"127.0.0.1:{free_port()}"))
    assert nowhere["valid-qwac"] == {"strict": ("reject", "revocation-unknown"), "chain-only": ("accept", None),
                                     "chain+revocation": ("reject", "revocation-unknown"), "psd2-role": ("accept", None)}


def test_a_manifest_pointing_outside_its_directory_is_refused(served: tuple[Served, Path], tmp_path: Path) -> None:
    s, catalogue = served
    copy = tmp_path / "copy"
    shutil.copytree(catalogue, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["scenarios"][0]["certificate"] = "../../../../etc/passwd"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    error = matrix(s.data_dir, "--manifest", copy, code=2)
    assert "outside" in error["detail"]
    (copy / "manifest.json").write_text("{not json")
    assert "not JSON" in matrix(s.data_dir, "--manifest", copy, code=2)["detail"]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_page_escapes_what_it_shows(served: tuple[Served, Path], tmp_path: Path) -> None:
    s, catalogue = served
    copy = tmp_path / "hostile"
    shutil.copytree(catalogue, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["scenarios"][0]["name"] = "<script>alert(1)</script>"
    manifest["scenarios"][0]["purpose"] = "qwac"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    matrix(s.data_dir, "--manifest", copy, "--html", tmp_path / "m.html")
    parsed = _Tags()
    parsed.feed((tmp_path / "m.html").read_text())
    assert "script" not in parsed.tags
    assert "<script>alert(1)</script>" in "".join(parsed.text)  # shown as text
    # Never overwritten.
    error = matrix(s.data_dir, "--manifest", copy, "--html", tmp_path / "m.html", code=5)
    assert "refusing to overwrite" in error["detail"]
