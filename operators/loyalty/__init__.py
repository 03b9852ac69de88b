"""Loyalty points: earn rules, the per-transaction book, the member ledger and the identity links."""
