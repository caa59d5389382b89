"""Key ceremonies on file keys, in process: an interactive run records who confirmed (and a refusal
aborts it), its record as Markdown and HTML; the strict schema refuses before anything is made; the
shipped examples validate and every field is documented. (On a real SoftHSM2 token, and with Vault
Transit: tests/system/ceremonies/test_ceremonies.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ceremonies import examples_dir, report, schema
from cli.commands_ceremony import ceremony as ceremony_cli
from qtsp.core.errors import Kind, QTSPError

from support.ceremonies import DELETE as _DELETE, edit, run, set_ as _set


def test_interactive_run_records_who_confirmed(tmp_path: Path) -> None:
    def file_root(d: dict[str, Any]) -> None:
        d["key"] = {"backend": {"type": "file", "dir": "keys"}, "label": "root-1", "type": "ecdsa-p256"}

    path = edit(examples_dir() / "root.yaml", tmp_path / "root.yaml", file_root)
    cli = CliRunner()
    declined = cli.invoke(ceremony_cli, ["run", str(path)], input="y\ny\nn\n")
    assert declined.exit_code == 3 and "Carol Witness did not confirm" in declined.output
    lines = (tmp_path / "out/root.transcript.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == "abort" and not (tmp_path / "keys/keys/root-1.p8").exists()
    shutil.rmtree(tmp_path / "out")
    done = cli.invoke(ceremony_cli, ["run", str(path)], input="y\n" * 12)
    assert done.exit_code == 0, done.output
    assert "Final hash (witnesses, write this down)" in done.output
    lines = [json.loads(x) for x in (tmp_path / "out/root.transcript.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == ["open", "generate-root-key", "lint-root", "sign-root", "write-public-key", "close"]
    assert all(x["confirmed_by"] == ["Alice Administrator", "Bob Witness", "Carol Witness"] for x in lines[1:-1])
    assert lines[-1]["signature"] and lines[-1]["signed_by"] == lines[1]["keys"][0]["fingerprint"]
    rendered = report.render(tmp_path / "out/root.transcript.jsonl")
    assert lines[-1]["hash"] in rendered and "| Witness | Carol Witness |" in rendered and "**passed**" in rendered
    # The same record as HTML, read back by lxml's HTML parser: the summary, every step, the signature table.
    import lxml.html

    written = cli.invoke(ceremony_cli, ["report", str(tmp_path / "out/root.transcript.jsonl"), "--out",
                                        str(tmp_path / "record.html")])
    assert written.exit_code == 0, written.output
    doc = lxml.html.fromstring((tmp_path / "record.html").read_bytes())
    assert doc.findtext(".//h1").startswith("Key ceremony record")
    summary = {row.xpath("string(td[1])"): row.xpath("string(td[2])") for row in doc.xpath("//table[1]//tr")}
    assert summary["Final hash"] == lines[-1]["hash"] and summary["Verification"] == "passed"
    assert len(doc.xpath("//h3")) == len(lines) - 2  # one heading per step between open and close
    signers = [[c.text_content() for c in row.xpath("td")] for row in doc.xpath("//table[@class='sig']//tr[td]")]
    assert ["Witness", "Carol Witness", "", "", ""] in signers and len(signers) == 3
    # A name is text, never markup.
    hostile = report.to_html("# x\n\n| Role | Name |\n|---|---|\n| Witness | <script>alert(1)</script> `a` |\n")
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile


REFUSED_ROOT = [  # (change, kind, message fragment): the table of schema refusals
    (_set("key.pin", "1234"), Kind.MALFORMED, "key.pin: unknown field"),
    (_set("subject.country", False), Kind.MALFORMED, "subject.country: expected a non-empty string"),
    (_set("certificate.validity-days", "ten years"), Kind.MALFORMED, "certificate.validity-days: expected an integer"),
    (_set("key.type", "ed25519"), Kind.MALFORMED, "key.type: expected one of"),
    (_set("key.backend", {"type": "hsm"}), Kind.MALFORMED, "key.backend.type: expected one of"),
    (_set("key.backend.token", _DELETE), Kind.MALFORMED, "key.backend.token: missing"),
    (_set("people.witnesses", []), Kind.POLICY, "at least one witness"),
    (_set("people.witnesses", ["Alice Administrator"]), Kind.POLICY, "cannot witness their own"),
    (_set("outputs.public-key", "out/root.pem"), Kind.MALFORMED, "is also outputs.certificate"),
    (_set("ceremony-type", "sub-ca"), Kind.MALFORMED, "ceremony-type: expected one of"),
    (_set("subject.organization-identifier", "bogus"), Kind.MALFORMED, "organizationIdentifier"),
]


@pytest.mark.parametrize("change,kind,fragment", REFUSED_ROOT, ids=[r[2][:30] for r in REFUSED_ROOT])
def test_strict_schema_refuses_before_anything_is_made(tmp_path: Path, change: Any, kind: Kind, fragment: str) -> None:
    path = edit(examples_dir() / "root.yaml", tmp_path / "root.yaml", change)
    with pytest.raises(QTSPError) as refused:
        run(path)
    assert refused.value.kind is kind and fragment in refused.value.detail, refused.value.detail
    assert not (tmp_path / "out").exists()


def test_examples_validate_and_every_field_is_documented() -> None:
    for path in sorted(examples_dir().glob("*.yaml")):
        schema.check(schema.load_yaml(path), path.parent)
    rows = list(schema.field_rows())
    assert rows and all(doc.strip() for *_, doc in rows)
    assert {"people.custodians", "key.backend", "quorum.threshold", "shares[].file"} <= {r[1] for r in rows}
