"""Webhook signing, the SSRF guard, delivery and the circuit breaker."""
