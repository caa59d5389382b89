"""The portal in a real browser (issue 20): headless Chromium driven by Selenium 4 against `qtsp serve` on
loopback. A PSP registers an organisation (named like an XSS payload), requests a QWAC with a generated key,
downloads the PKCS#12 and openssl opens it, sees it in the list, revokes it and openssl's OCSP client hears
"revoked" from the served responder; a second PSP can neither see nor revoke it, by the pages or by URL; a
form posted without its CSRF token is refused; a QSealC is issued for a CSR openssl made and pasted in.
Screenshots of the main pages are taken on the way (copied to $QTSP_SCREENSHOTS, e.g. docs/portal, only
when set)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qtsp.services import portal
from qtsp.services.hierarchy import init_sandbox
from support.browser import Screenshots, chromium, csp_violations, downloaded, wait_for
from support.external import find_openssl
from support.portal import PASSWORD
from support.server import free_port, running_server

XSS = "<script>alert(1)</script>"
P12_PASSWORD = "browser-p12-pass"


@dataclass
class World:
    url: str
    data_dir: Path
    tmp: Path
    shots: Screenshots
    serial: str = ""
    org_id: str = ""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("portal-browser")
    port = free_port()
    data_dir = tmp / "qtsp-data"
    sandbox = init_sandbox(data_dir, base_url=f"http://127.0.0.1:{port}")
    for name, role in (("alice", "psp"), ("bob", "psp"), ("carol", "psp"), ("ops", "operator")):
        portal.create_account(sandbox, name, PASSWORD, role, actor="test")
    sandbox.engine.dispose()
    shots = Screenshots(tmp / "screenshots")
    with running_server(data_dir, port=port, timeout=60) as url:
        yield World(url, data_dir, tmp, shots)
    shots.publish()


@pytest.fixture
def browser(world: World, request: pytest.FixtureRequest) -> Iterator[Any]:
    name = request.node.name[:40]
    with chromium(world.tmp / f"profile-{name}", world.tmp / f"downloads-{name}") as driver:
        driver.downloads = world.tmp / f"downloads-{name}"  # type: ignore[attr-defined]
        yield driver


def _sign_in(driver: Any, world: World, user: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(world.url + "/portal/")
    assert driver.current_url.startswith(world.url + "/portal/sign-in")
    driver.find_element(By.ID, "account-username").send_keys(user)
    driver.find_element(By.ID, "account-password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    wait_for(lambda: driver.find_elements(By.ID, "who-name"), what="the signed-in page")
    assert driver.find_element(By.ID, "who-name").text == user


def _no_alert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018  (reading it raises when there is none)


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_openssl(), *args], capture_output=True, text=True, timeout=60)


def test_a_psp_registers_requests_downloads_lists_and_revokes(world: World, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    driver.get(world.url + "/portal/sign-in")
    world.shots.take(driver, "sign-in")
    _sign_in(driver, world, "alice")
    assert driver.find_element(By.ID, "no-organisations").is_displayed()
    world.shots.take(driver, "psp-empty")

    # Register an organisation whose name is an XSS payload: it must come back as text.
    driver.find_element(By.LINK_TEXT, "Register your first organisation").click()
    driver.find_element(By.ID, "legal_name").send_keys(XSS)
    Select(driver.find_element(By.ID, "nca")).select_by_value("BE-NBB")
    for role in ("PSP_AI", "PSP_PI"):
        driver.find_element(By.CSS_SELECTOR, f"input[name=roles][value={role}]").click()
    driver.find_element(By.ID, "locality").send_keys("Brussels")
    world.shots.take(driver, "register-organisation")
    driver.find_element(By.ID, "register").click()
    wait_for(lambda: driver.find_elements(By.ID, "request-form"), what="the request form")
    _no_alert(driver)
    world.org_id = Select(driver.find_element(By.ID, "org_id")).first_selected_option.get_attribute("value")
    assert world.org_id.startswith("PSDBE-NBB-SBX")
    assert XSS in Select(driver.find_element(By.ID, "org_id")).first_selected_option.text

    # Request a client QWAC with a generated key: the answer is the PKCS#12 download.
    driver.find_element(By.CSS_SELECTOR, "input[name=kind][value=qwac]").click()
    Select(driver.find_element(By.ID, "purpose")).select_by_value("client")
    driver.find_element(By.ID, "domains").send_keys("api.alice-payments.eu")
    driver.find_element(By.CSS_SELECTOR, "input[name=key_source][value=generate]").click()
    driver.find_element(By.ID, "p12_password").send_keys(P12_PASSWORD)
    world.shots.take(driver, "request-certificate")
    driver.find_element(By.ID, "submit-request").click()
    try:
        p12 = downloaded(driver.downloads, ".p12", timeout=60)
    except AssertionError:
        errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".error")]
        raise AssertionError(f"no PKCS#12 downloaded; the page says {errors}") from None
    world.serial = p12.stem

    opened = _openssl("pkcs12", "-in", str(p12), "-passin", f"pass:{P12_PASSWORD}", "-nodes", "-clcerts")
    assert opened.returncode == 0, opened.stderr
    assert "-----BEGIN PRIVATE KEY-----" in opened.stdout and "-----BEGIN CERTIFICATE-----" in opened.stdout
    cert = world.tmp / "alice.pem"
    cert.write_text(opened.stdout[opened.stdout.index("-----BEGIN CERTIFICATE-----"):])
    serial = _openssl("x509", "-in", str(cert), "-noout", "-serial").stdout.strip().split("=")[1]
    assert serial.lstrip("0") == world.serial.lstrip("0")
    wrong = _openssl("pkcs12", "-in", str(p12), "-passin", "pass:not-the-password", "-nodes")
    assert wrong.returncode != 0

    # The list shows it, with its roles and status; the organisation name is text, and no script ran.
    driver.get(world.url + "/portal/")
    _no_alert(driver)
    row = driver.find_element(By.CSS_SELECTOR, f"tr[data-serial='{world.serial}']")
    assert "PSP_AI" in row.text and "good" in row.text
    assert driver.find_element(By.CSS_SELECTOR, "#organisations td.org-name").text == XSS
    world.shots.take(driver, "psp-certificates")
    driver.set_window_size(390, 844)  # a phone: the layout reflows, nothing is cut off sideways
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    world.shots.take(driver, "psp-certificates-phone")
    driver.set_window_size(1280, 900)

    # Revoke it; OCSP (openssl against the served responder) says revoked.
    row.find_element(By.TAG_NAME, "a").click()
    wait_for(lambda: driver.find_elements(By.ID, "revoke-form"), what="the certificate page")
    # The one script (served from this origin) ran under the CSP: it shows the copy buttons.
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "button.copy[data-copy=cert-pem]").is_displayed(),
             what="the copy button")
    world.shots.take(driver, "certificate")
    Select(driver.find_element(By.ID, "reason")).select_by_value("key-compromise")
    driver.find_element(By.ID, "revoke").click()
    wait_for(lambda: driver.find_elements(By.ID, "revocation"), what="the revoked certificate page")
    assert "key-compromise" in driver.find_element(By.ID, "revocation").text
    url = _openssl("x509", "-in", str(cert), "-noout", "-ocsp_uri").stdout.strip()
    assert url.startswith(world.url)
    ocsp = _openssl("ocsp", "-issuer", str(world.data_dir / "ca/qwac-ca.pem"), "-cert", str(cert), "-url", url,
                    "-CAfile", str(world.data_dir / "ca/root.pem"))
    assert ocsp.returncode == 0, ocsp.stderr
    assert f"{cert}: revoked" in ocsp.stdout and "Reason: keyCompromise" in ocsp.stdout
    assert "Response verify OK" in ocsp.stderr
    assert csp_violations(driver) == []  # nothing on these pages needed what the policy forbids


def test_a_second_psp_cannot_see_or_revoke_the_first_ones_certificate(world: World, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    assert world.serial, "runs after the first PSP's test"
    driver = browser
    _sign_in(driver, world, "bob")
    assert world.serial not in driver.page_source and world.org_id not in driver.page_source
    driver.get(f"{world.url}/portal/certificates/{world.serial}")
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Not found")
    driver.get(f"{world.url}/portal/certificates/{world.serial}/cert.pem")
    assert "BEGIN CERTIFICATE" not in driver.page_source
    # By URL: a revocation form of his own, pointed at her certificate, with his valid CSRF token.
    driver.get(world.url + "/portal/")
    driver.execute_script("""
        const form = document.querySelector('form.who');
        form.action = arguments[0];
        const reason = document.createElement('input');
        reason.type = 'hidden'; reason.name = 'reason'; reason.value = 'superseded';
        form.appendChild(reason);
        form.submit();""", f"/portal/certificates/{world.serial}/revoke")
    wait_for(lambda: driver.find_elements(By.ID, "error-message"), what="the refusal")
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Not found")  # as for a serial never issued
    assert "no certificate with serial" in driver.find_element(By.ID, "error-message").text
    from qtsp.services import search
    from qtsp.services.context import open_sandbox

    sandbox = open_sandbox(world.data_dir)
    try:
        record = search.certificate(sandbox, world.serial)
        assert record.revocation is not None and record.revocation.reason == "key-compromise"  # unchanged by Bob
    finally:
        sandbox.engine.dispose()


def test_a_form_without_its_csrf_token_is_refused(world: World, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    _sign_in(driver, world, "bob")
    driver.get(world.url + "/portal/organisations/new")
    driver.find_element(By.ID, "legal_name").send_keys("Forged Ltd")
    Select(driver.find_element(By.ID, "nca")).select_by_value("FR-ACPR")
    driver.find_element(By.CSS_SELECTOR, "input[name=roles][value=PSP_AI]").click()
    driver.find_element(By.ID, "locality").send_keys("Paris")
    driver.execute_script("document.querySelector('#organisation-form input[name=csrf_token]').remove();")
    driver.find_element(By.ID, "register").click()
    wait_for(lambda: driver.find_elements(By.ID, "error-message"), what="the refusal")
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Form refused")
    assert "CSRF" in driver.find_element(By.ID, "error-message").text
    driver.get(world.url + "/portal/")
    assert "Forged Ltd" not in driver.page_source


def test_a_psp_gets_a_qsealc_for_a_pasted_csr(world: World, browser: Any) -> None:
    """The key stays with the PSP: openssl makes it and the CSR, the page issues, the PEM matches the key."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    key, csr = world.tmp / "carol.key", world.tmp / "carol.csr"
    made = _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
                    "-out", str(csr), "-subj", "/CN=ignored")
    assert made.returncode == 0, made.stderr
    driver = browser
    _sign_in(driver, world, "carol")
    driver.get(world.url + "/portal/organisations/new")
    driver.find_element(By.ID, "legal_name").send_keys("Carol Seals GmbH")
    Select(driver.find_element(By.ID, "nca")).select_by_value("DE-BAFIN")
    driver.find_element(By.ID, "authorisation_number").send_keys("HRB-4711")
    driver.find_element(By.CSS_SELECTOR, "input[name=roles][value=PSP_PI]").click()
    driver.find_element(By.ID, "locality").send_keys("Frankfurt")
    driver.find_element(By.ID, "register").click()
    wait_for(lambda: driver.find_elements(By.ID, "request-form"), what="the request form")
    assert Select(driver.find_element(By.ID, "org_id")).first_selected_option.get_attribute("value") == "PSDDE-BAFIN-HRB-4711"
    driver.find_element(By.CSS_SELECTOR, "input[name=kind][value=qsealc]").click()
    driver.find_element(By.CSS_SELECTOR, "input[name=key_source][value=csr]").click()
    driver.find_element(By.ID, "csr_text").send_keys(csr.read_text())
    driver.find_element(By.ID, "submit-request").click()
    wait_for(lambda: driver.find_elements(By.ID, "serial"), what="the issued certificate's page")
    pem = driver.find_element(By.ID, "cert-pem").text
    issued = world.tmp / "carol.pem"
    issued.write_text(pem + "\n")
    ours = _openssl("x509", "-in", str(issued), "-noout", "-pubkey").stdout
    theirs = _openssl("pkey", "-in", str(key), "-pubout").stdout
    assert ours and ours == theirs
    subject = _openssl("x509", "-in", str(issued), "-noout", "-subject").stdout
    assert "PSDDE-BAFIN-HRB-4711" in subject and "Carol Seals GmbH" in subject


def test_the_operator_sees_the_sandbox(world: World, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    _sign_in(driver, world, "ops")
    driver.get(world.url + "/portal/operator/")
    assert driver.find_elements(By.CSS_SELECTOR, "#activity svg rect.bar-issued")
    assert driver.find_elements(By.CSS_SELECTOR, "#ocsp-traffic svg rect.bar-ocsp")  # openssl's requests above
    world.shots.take(driver, "operator-dashboard")
    driver.get(world.url + "/portal/operator/psps")
    assert XSS in driver.find_element(By.ID, "psp-list").text
    _no_alert(driver)
    world.shots.take(driver, "operator-psps")
    driver.get(world.url + "/portal/operator/service")
    assert "qwac-ca" in driver.find_element(By.ID, "service-certs").text
    world.shots.take(driver, "operator-service")
    driver.get(world.url + "/portal/operator/audit")
    assert driver.find_element(By.ID, "audit-verdict").text == "verified"
    assert "portal:alice" in driver.find_element(By.ID, "audit-list").text
    world.shots.take(driver, "operator-audit")
    driver.get(world.url + "/portal/")
    assert world.serial in driver.page_source  # the operator sees every PSP's certificates
