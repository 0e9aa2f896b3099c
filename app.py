"""Entry point: `python app.py` serves HTTP and Socket.IO; `gunicorn app:app` imports `app`."""

from finstack import create_app
from finstack.bootstrap import prepare_database
from finstack.extensions import socketio

app = create_app()
prepare_database(app)

if __name__ == "__main__":
    # The development server; production runs gunicorn with the eventlet worker (see README).
    socketio.run(app, host=app.config["HOST"], port=app.config["PORT"], allow_unsafe_werkzeug=True)
