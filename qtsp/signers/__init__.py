"""Key custody: Signers that look like cryptography private keys, chosen by key-reference scheme.

``file:``            encrypted PKCS#8 in the data dir (this package, ``file.py``)
``vault-transit:``   HashiCorp Vault / OpenBao Transit (the Vault issue)
``pkcs11:``          an HSM through python-pkcs11 (the ceremonies issue)

The store keeps only the reference string; key material never leaves its backend.
"""

from .base import (Backend, Connected, KeyAttributes, KeyBackup, KeyInfo, Signer, backend_for, register_backend,
                   signer_for)

__all__ = ["Backend", "Connected", "KeyAttributes", "KeyBackup", "KeyInfo", "Signer", "backend_for", "register_backend",
           "signer_for"]

# The built-in backends register themselves on import (hvac is imported only when Vault is used).
from . import file as _file  # noqa: E402,F401
from . import vault as _vault  # noqa: E402,F401
from . import pkcs11 as _pkcs11  # noqa: E402,F401
