"""The WSGI entry point gunicorn serves: `gunicorn wsgi:application`."""

from app import create_app

application = create_app()
