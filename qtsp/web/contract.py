"""What the REST API accepts and answers, in one place for the handlers that enforce it (``api``) and the
document that describes it (``openapi``), so the two cannot drift apart and neither imports the other."""

from __future__ import annotations

import datetime as dt

from ..core.profiles import CERTIFICATE_KINDS

STATUSES = ("good", "revoked")  # a certificate's status in the store; the list filter has more (repo.CERTIFICATE_STATUSES)
KINDS = CERTIFICATE_KINDS  # also tags of the profiles of each kind
JWS_ALGORITHMS = ("ES256", "ES384", "PS256", "RS256")  # revocation requests signed with the certificate's key
IAT_WINDOW = dt.timedelta(minutes=5)  # how far a signed revocation request's iat may be from the server's clock
MAX_BEHAVIOUR_ID = 2**31 - 1
