"""Who may call the API: API keys with roles, a per-key rate limit, and the middleware that applies them."""
