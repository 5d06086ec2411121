"""The alert subscription API and the live monitoring page (``cardiowatch api``).

Public names: :func:`create_app` (the FastAPI app), :func:`serve` (uvicorn),
:class:`TokenStore` (tokens and wards in Redis).
"""

from cardiowatch.api.app import create_app
from cardiowatch.api.auth import TokenStore
from cardiowatch.api.server import serve

__all__ = ["TokenStore", "create_app", "serve"]
