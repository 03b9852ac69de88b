"""Helpers the integration and end-to-end tests share: publish, run a flow to the end, read Redis back."""
