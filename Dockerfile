# FinStack API: gunicorn with one eventlet worker (see gunicorn.conf.py for why one, and why eventlet).
#   docker build -t finstack .
#   docker run -p 5000:5000 -e DATABASE_URL=postgresql://... -e SECRET_KEY=... -e JWT_SECRET_KEY=... \
#       -v finstack-data:/app/instance finstack
# The entrypoint (deploy/entrypoint.sh) runs `flask setup` first: it migrates the schema to the latest revision
# (under a PostgreSQL advisory lock, so containers starting together take turns) and creates the first admin,
# printing a generated password once; if that fails the container exits saying why instead of serving.
# `docker run ... finstack setup` only sets up; `docker run ... finstack flask users list` runs a command.
# A whole stack (PostgreSQL, Redis, two app processes, nginx): deploy/docker-compose.yml.
# Production refuses to start without SECRET_KEY and JWT_SECRET_KEY of 32+ characters.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FINSTACK_ENV=production \
    FLASK_APP=app.py \
    HOST=0.0.0.0 \
    PORT=5000

WORKDIR /app

# Every pinned dependency ships a manylinux wheel (psycopg2-binary, greenlet), so no compiler is needed.
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN groupadd --system --gid 10001 finstack \
    && useradd --system --uid 10001 --gid finstack --home-dir /app --no-create-home --shell /usr/sbin/nologin finstack

# The code stays owned by root, read-only to the server; only instance/ (uploads, runtime data) is writable.
COPY . .
RUN mkdir -p instance/uploads && chown -R finstack:finstack instance

USER finstack

EXPOSE 5000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('PORT', '5000'), timeout=4)"]

ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["serve"]
