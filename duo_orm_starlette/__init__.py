"""duo-orm adapter for Starlette: one database transaction per HTTP request.

Not implemented yet; see the project issues.
"""
