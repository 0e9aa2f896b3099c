#!/bin/sh
# The container's entrypoint (see the Dockerfile).
#   serve (default)  migrate the database to the latest schema and create the first admin (`flask setup`, under a
#                    PostgreSQL advisory lock, so containers starting together migrate one at a time), then run
#                    gunicorn with one eventlet worker. If the setup fails, the container stops and says why
#                    instead of serving an outdated schema.
#   setup            only the setup (the one-shot service of deploy/docker-compose.yml).
#   anything else    run as given, e.g. `flask users list`.
set -eu

case "${1:-serve}" in
    serve)
        flask setup
        exec gunicorn -c gunicorn.conf.py -k eventlet -w 1 app:app
        ;;
    setup)
        exec flask setup
        ;;
    *)
        exec "$@"
        ;;
esac
