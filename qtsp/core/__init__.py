"""The pure core: builds and checks certificates; no I/O, no clock reads.

Modules here import only the standard library, cryptography and asn1crypto.
``tests/test_core_purity.py`` keeps that true.
"""
