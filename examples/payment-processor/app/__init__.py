"""payment-processor: a small payment API (the deployline sample service).

`create_app()` builds the Flask application; `wsgi.application` is what gunicorn serves.
"""

from app.service import create_app

__all__ = ["create_app"]
