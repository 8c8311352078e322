"""Auth: owns users, issues and refreshes EdDSA-signed JWTs, publishes its public keys."""
