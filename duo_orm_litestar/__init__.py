"""duo-orm adapter for Litestar: one database transaction per HTTP request.

Not implemented yet; see the project issues.
"""
