"""duo-orm adapter for FastAPI: one database transaction per HTTP request.

Not implemented yet; see the project issues.
"""
