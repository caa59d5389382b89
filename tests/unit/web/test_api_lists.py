"""The API's list endpoints (issue 13): GET /api/v1/certificates and GET /api/v1/simulator/behaviours.

Totals, filters (each one alone and combined), paging by cursor and by offset, strict parameters
(a bad one is a 400 naming it), and the SQL a page costs."""

from __future__ import annotations

import base64
import datetime as dt
from contextlib import contextmanager
from typing import Any
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event

from ca_store import repositories as repo
from qtsp.clock import as_of
from support.api import PREFIX, SAMPLE_ORG, Api, assert_problem

LIST = f"{PREFIX}/certificates"
BEHAVIOURS = f"{PREFIX}/simulator/behaviours"


def page(api: Api, query: str = "", url: str | None = None) -> dict[str, Any]:
    response = api.client.get(url or f"{LIST}?{query}", headers=api.headers("auditor"))
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def serials(api: Api, query: str = "") -> list[str]:
    return [c["serial"] for c in page(api, query)["certificates"]]


def walk(api: Api, first: str, between: Any = None) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow 'next' from ``first`` to the end; ``between(n)`` runs after page n."""
    seen, pages, url = [], [], f"{LIST}?{first}"
    while url is not None:
        body = page(api, url=url)
        pages.append(body)
        seen += [c["serial"] for c in body["certificates"]]
        if between is not None:
            between(len(pages))
        url = body["next"]
    return seen, pages


def when(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)


@pytest.fixture
def four(api: Api) -> dict[str, dict[str, Any]]:
    """One certificate of each PSD2 profile, issued in this order (so the list shows them reversed)."""
    return {
        "qwac": api.issue()[0],
        "qwac-browser": api.issue(browser=True)[0],
        "qsealc": api.issue(kind="qsealc")[0],
        "qsealc-qscd": api.issue(kind="qsealc", qscd=True)[0],
    }


def test_total_and_every_filter(api: Api, four: dict[str, dict[str, Any]]) -> None:
    serial = {name: cert["serial"] for name, cert in four.items()}
    newest_first = [serial[n] for n in ("qsealc-qscd", "qsealc", "qwac-browser", "qwac")]
    body = page(api)
    assert [c["serial"] for c in body["certificates"]] == newest_first
    assert (body["total"], body["limit"], body["offset"], body["next_offset"], body["next"]) == (4, 100, 0, None, None)

    assert serials(api, "kind=qwac") == [serial["qwac-browser"], serial["qwac"]]
    assert serials(api, "kind=qsealc") == [serial["qsealc-qscd"], serial["qsealc"]]
    assert serials(api, "profile=qwac") == [serial["qwac"]]  # exact: not qwac-browser
    assert serials(api, "kind=qsealc&profile=qsealc-qscd") == [serial["qsealc-qscd"]]
    assert serials(api, "kind=qwac&profile=qsealc") == []
    # Two hierarchies: the browser QWAC from its own CA, the mutual-TLS one from the non-browser QWAC CA.
    assert (four["qwac"]["issuer"], four["qwac-browser"]["issuer"]) == ("qwac-ca", "qwac-browser-ca")
    assert serials(api, f"issuer={four['qwac']['issuer']}") == [serial["qwac"]]
    assert serials(api, f"issuer={four['qwac-browser']['issuer']}") == [serial["qwac-browser"]]
    assert serials(api, f"org_id={SAMPLE_ORG}") == newest_first
    assert page(api, "org_id=PSDBE-NBB-9999999999")["total"] == 0

    api.client.post(f"{LIST}/{serial['qsealc']}/revoke", json={"reason": "superseded"}, headers=api.headers("operator"))
    assert serials(api, "status=revoked") == [serial["qsealc"]]
    unrevoked = [s for s in newest_first if s != serial["qsealc"]]
    assert serials(api, "status=good") == serials(api, "status=valid") == unrevoked
    assert serials(api, "status=expired") == []

    # Statuses are as of the request's time: after the browser QWAC's notAfter (CA/B schedule, 200 days),
    # before the QSealCs' (365) and the mutual-TLS QWAC's (its own limit, 398).
    qwac_end, seal_end = when(four["qwac-browser"]["not_after"]), when(four["qsealc-qscd"]["not_after"])
    assert qwac_end < seal_end < when(four["qwac"]["not_after"]), "the browser QWAC must end first for this test"
    with as_of(qwac_end + (seal_end - qwac_end) / 2):
        assert serials(api, "status=expired") == [serial["qwac-browser"]]
        assert serials(api, "status=valid") == [serial["qsealc-qscd"], serial["qwac"]]
        assert serials(api, "status=revoked") == [serial["qsealc"]]  # revoked wins over expired or not
        assert serials(api, "status=good") == unrevoked  # whatever the dates
    assert serials(api, "status=valid&kind=qwac") == [serial["qwac-browser"], serial["qwac"]]

    # expiring_before: a date-time with a zone, or a date meaning 00:00Z of that day
    cut = (qwac_end + dt.timedelta(days=1)).date().isoformat()
    assert serials(api, f"expiring_before={cut}") == [serial["qwac-browser"]]
    assert serials(api, f"expiring_before={cut}&status=valid&org_id={SAMPLE_ORG}") == [serial["qwac-browser"]]
    just_at = four["qwac-browser"]["not_after"].replace("+00:00", "Z")
    assert serial["qwac-browser"] not in serials(api, f"expiring_before={just_at}")  # strictly before
    assert page(api, f"expiring_before={cut}&kind=qsealc")["total"] == 0


def test_cursor_paging_neither_repeats_nor_skips_while_certificates_are_issued(api: Api) -> None:
    issued = [api.issue(kind="qsealc")[0]["serial"] for _ in range(5)]
    later: list[str] = []

    def issue_one_more(pages_seen: int) -> None:
        if pages_seen == 1:
            later.append(api.issue(kind="qsealc")[0]["serial"])

    seen, pages = walk(api, "limit=2", issue_one_more)
    assert seen == issued[::-1]  # every certificate that existed at the start, once, newest first
    assert [len(p["certificates"]) for p in pages] == [2, 2, 1]
    assert [p["total"] for p in pages] == [5, 6, 6]  # the total follows the store
    assert [p["offset"] for p in pages] == [0, 3, 5]  # positions in the list as it is now
    assert [p["next_offset"] for p in pages] == [2, 5, None]
    assert pages[-1]["next"] is None and all(p["limit"] == 2 for p in pages)
    link = urlsplit(pages[0]["next"])
    assert link.path == LIST and set(parse_qs(link.query)) == {"limit", "cursor"}

    # The same walk by offset, for contrast: the certificate issued in between pushes one back onto page 2.
    assert serials(api, "limit=2&offset=2")[0] == issued[-2]


def test_next_link_keeps_the_filters_and_revocations_between_pages_skip_nothing(api: Api) -> None:
    seals = [api.issue(kind="qsealc")[0]["serial"] for _ in range(4)]
    qwac = api.issue()[0]["serial"]

    def revoke_first_seen(pages_seen: int) -> None:
        if pages_seen == 1:  # drops out of status=valid: an offset would now skip one certificate
            api.client.post(f"{LIST}/{seals[-1]}/revoke", json={"reason": "superseded"}, headers=api.headers("operator"))

    seen, pages = walk(api, "status=valid&kind=qsealc&limit=2", revoke_first_seen)
    assert seen == seals[::-1] and qwac not in seen
    assert parse_qs(urlsplit(pages[0]["next"]).query)["status"] == ["valid"]
    assert [p["total"] for p in pages] == [4, 3]


def test_offset_paging(api: Api) -> None:
    issued = [api.issue(kind="qsealc")[0]["serial"] for _ in range(3)][::-1]
    assert serials(api, "limit=1&offset=1") == [issued[1]]
    body = page(api, "limit=2&offset=1")
    assert [c["serial"] for c in body["certificates"]] == issued[1:]
    assert (body["offset"], body["next_offset"], body["next"], body["total"]) == (1, None, None, 3)
    body = page(api, "limit=1")
    assert body["next_offset"] == 1 and page(api, url=body["next"])["certificates"][0]["serial"] == issued[1]
    assert page(api, "offset=3")["certificates"] == [] and page(api, "offset=3")["total"] == 3


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(("query", "named"), [
    ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"), ("limit=1.5", "limit"),
    ("offset=-1", "offset"), ("offset=2147483648", "offset"), ("offset=%2B1", "offset"),
    ("cursor=", "cursor"), ("cursor=!!", "cursor"), ("cursor=" + "A" * 65, "cursor"),
    ("cursor=" + _cursor("before:0"), "cursor"), ("cursor=" + _cursor("after:5"), "cursor"),
    ("cursor=" + _cursor("before:99999999999999999999"), "cursor"),
    ("cursor=" + _cursor("before:5") + "&offset=1", "cursor and offset"),
    ("status=good2", "status"), ("status=", "status"), ("kind=qwacs", "kind"),
    ("profile=QWAC", "profile"), ("profile=" + "p" * 65, "profile"), ("issuer=Qwac-CA", "issuer"),
    ("issuer=" + "a" * 65, "issuer"), ("org_id=", "org_id"), ("org_id=" + "x" * 129, "org_id"),
    ("expiring_before=2027-13-01", "expiring_before"), ("expiring_before=2027-06-01T00:00", "expiring_before"),
    ("expiring_before=tomorrow", "expiring_before"), ("expiring_before=1900-01-01", "expiring_before"),
    ("colour=red", "colour"), ("limit=1&limit=2", "limit"), ("Status=valid", "Status"),
])
def test_bad_parameters_are_400_naming_the_parameter(api: Api, query: str, named: str) -> None:
    body = assert_problem(api.client.get(f"{LIST}?{query}", headers=api.headers("auditor")), 400)
    assert named in body["detail"], body["detail"]


def test_a_cursor_from_the_api_is_accepted(api: Api) -> None:
    issued = [api.issue(kind="qsealc")[0]["serial"] for _ in range(2)]
    first = page(api, "limit=1")
    cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]
    assert serials(api, f"cursor={cursor}") == [issued[0]]  # without limit: the default one
    assert serials(api, f"cursor={cursor}&kind=qwac") == []


@contextmanager
def statements(api: Api) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (and their parameters) the app runs meanwhile."""
    seen: list[tuple[str, Any]] = []
    engine = api.app.extensions["qtsp"].sandbox.engine

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((" ".join(statement.split()), parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_page_costs_a_count_and_one_select_whatever_its_size(api: Api) -> None:
    for _ in range(3):
        serial = api.issue(kind="qsealc")[0]["serial"]
    api.client.post(f"{LIST}/{serial}/revoke", json={"reason": "superseded"}, headers=api.headers("operator"))
    for query in ("limit=1000", f"org_id={SAMPLE_ORG}&status=valid&limit=2", "limit=1&cursor=" + _cursor("before:6")):
        with statements(api) as seen:
            body = page(api, query)
        on_certificates = [s for s, _ in seen if "FROM certificates" in s]
        assert len(on_certificates) == 2, on_certificates  # the count, then the page with revocations joined
        count, rows = on_certificates
        assert count.startswith("SELECT count(*)") and "LIMIT" not in count
        assert "LEFT OUTER JOIN revocations" in rows and "LIMIT" in rows and "certificates.der" not in rows
        assert body["certificates"] and body["total"] >= 1
    revoked = page(api, "status=revoked")["certificates"]
    assert revoked[0]["revocation"]["reason"] == "superseded"  # the joined revocation is the one shown


def test_the_org_id_filter_is_served_by_its_index(api: Api) -> None:
    """SQLite's plan for the statements of a page filtered by org_id: the org_id index (its entries are
    in id order, so the newest-first page needs no sort)."""
    api.issue(kind="qsealc")
    engine = api.app.extensions["qtsp"].sandbox.engine
    with statements(api) as seen:
        page(api, f"org_id={SAMPLE_ORG}&limit=2")
    plans = []
    with engine.connect() as conn:
        for statement, parameters in seen:
            if "FROM certificates" in statement:
                plans.append(" ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                                                   parameters)))
    assert len(plans) == 2
    for plan in plans:
        assert "INDEX ix_certificates_org_id" in plan and "TEMP B-TREE" not in plan, plan


def test_search_certificates_time_is_an_argument(api: Api) -> None:
    """The repository's status filter as of the ``now`` it is given, without the clock."""
    cert = api.issue(kind="qsealc")[0]
    start, end = when(cert["not_before"]), when(cert["not_after"])
    sandbox = api.app.extensions["qtsp"].sandbox
    with sandbox.transaction() as session:
        def found(status: str, now: dt.datetime) -> list[str]:
            return [c.serial for c in repo.search_certificates(session, now=now, status=status).rows]

        second = dt.timedelta(seconds=1)
        assert found("valid", start) == found("valid", end) == [cert["serial"]]  # both ends are inside
        assert found("valid", start - second) == found("expired", start - second) == []  # not yet valid
        assert found("expired", end + second) == [cert["serial"]] and found("valid", end + second) == []
        with pytest.raises(ValueError, match="status"):
            repo.search_certificates(session, now=start, status="active")


# --- the simulator's behaviours ---------------------------------------------------------------------


def test_behaviours_list_pages_and_filters(api: Api) -> None:
    serial = api.issue()[0]["serial"]
    operator = api.headers("operator")
    made = []
    for body in ({"ca": "qwac-ca", "behaviour": "try-later"}, {"ca": "qwac-ca", "behaviour": "expired-crl"},
                 {"ca": "qseal-ca", "behaviour": "stale"}, {"ca": "qwac-ca", "behaviour": "stale", "serial": serial}):
        response = api.client.put(BEHAVIOURS, json=body, headers=operator)
        assert response.status_code == 200, response.get_data(as_text=True)
        made.append(response.get_json()["id"])

    def ids(query: str) -> tuple[list[int], dict[str, Any]]:
        response = api.client.get(f"{BEHAVIOURS}?{query}", headers=api.headers("auditor"))
        assert response.status_code == 200, response.get_data(as_text=True)
        return [b["id"] for b in response.get_json()["behaviours"]], response.get_json()

    everything, body = ids("")
    assert everything == made and body["total"] == 4 and body["next"] is None and body["time_travel"] is False
    first, body = ids("limit=3")
    assert first == made[:3] and body["next_offset"] == 3 and body["total"] == 4
    rest = api.client.get(body["next"], headers=api.headers("auditor")).get_json()
    assert [b["id"] for b in rest["behaviours"]] == made[3:] and rest["next"] is None and rest["offset"] == 3
    assert ids("ca=qwac-ca")[0] == [made[0], made[1], made[3]]
    assert ids("target=crl")[0] == [made[1]]
    assert ids("ca=qseal-ca&target=ocsp")[0] == [made[2]]
    assert ids("ca=nca-ca")[0] == []
    assert ids("offset=1&limit=2")[0] == made[1:3]


@pytest.mark.parametrize(("query", "named"), [
    ("ca=QWAC", "ca"), ("ca=", "ca"), ("target=dns", "target"), ("limit=0", "limit"), ("offset=x", "offset"),
    ("cursor=abc", "cursor"), ("serial=01", "serial"), ("ca=a&ca=b", "ca"),
])
def test_behaviours_list_refuses_bad_parameters(api: Api, query: str, named: str) -> None:
    body = assert_problem(api.client.get(f"{BEHAVIOURS}?{query}", headers=api.headers("auditor")), 400)
    assert named in body["detail"], body["detail"]


def test_the_openapi_document_describes_the_lists_as_served(api: Api) -> None:
    from qtsp.web.api import BEHAVIOUR_PARAMETERS, LIST_PARAMETERS

    doc = api.client.get(f"{PREFIX}/openapi.json").get_json()
    api.issue()
    for path, parameters, schema, body in (
        ("/certificates", LIST_PARAMETERS, "CertificateList", page(api, "limit=1")),
        ("/simulator/behaviours", BEHAVIOUR_PARAMETERS, "BehaviourList",
         api.client.get(f"{BEHAVIOURS}?limit=1", headers=api.headers("auditor")).get_json()),
    ):
        operation = doc["paths"][path]["get"]
        assert [p["name"] for p in operation["parameters"]] == list(parameters)
        assert all(p["in"] == "query" and "description" in p for p in operation["parameters"])
        assert set(doc["components"]["schemas"][schema]["required"]) == set(body)
    status = next(p for p in doc["paths"]["/certificates"]["get"]["parameters"] if p["name"] == "status")
    assert status["schema"]["enum"] == list(repo.CERTIFICATE_STATUSES)
