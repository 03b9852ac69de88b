"""The HTTP API (CONTRACT.md "HTTP API"): FastAPI over the documents the flows keep in Redis.

`serving.app.create_app` assembles it; run it with
`uvicorn --factory serving.app:create_app --no-access-log`.
"""
