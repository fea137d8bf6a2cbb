"""gunicorn settings for the container (the bind address is given on the command line).

Writes nothing outside /tmp, so the container runs with a read-only root filesystem (mount a
writable volume at /tmp).
"""

import os

# Threads serve concurrent requests in each worker; gthread honours keep-alive.
worker_class = "gthread"
# One process: payments live in this process's memory, so a second worker would answer 404 for a
# payment the first one took. Concurrency comes from threads here and from tasks in ECS.
workers = 1
threads = int(os.environ.get("THREADS", "8"))
# Longer than the load balancer's 60-second idle timeout, so the balancer closes idle
# connections first and never sends a request down one gunicorn just closed (a 502).
keepalive = 75
timeout = 30
# ECS sends SIGTERM, then SIGKILL after its stop timeout (30 s): finish in-flight requests first.
graceful_timeout = 20
# Worker heartbeats go to /tmp, the one writable path in the container (a task volume: the root
# filesystem is read-only). The control socket would default to $HOME: turn it off.
worker_tmp_dir = "/tmp"  # nosec B108
control_socket_disable = True
# Every line on stdout is one JSON object. gunicorn's own messages go through the application's
# formatter; there is no gunicorn access log: the application logs each request as JSON with
# its request ID (gunicorn's access format cannot escape a quote in a header value).
accesslog = None
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "app.structured_logging.JsonFormatter"},
    },
    "handlers": {
        "json": {"class": "app.structured_logging.StdoutHandler", "formatter": "json"},
    },
    "root": {"level": "INFO", "handlers": ["json"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
    },
}
