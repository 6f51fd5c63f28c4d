"""Accounts of the gateway's built-in issuer (login, argon2id hash, status) and IdP provisioning."""
