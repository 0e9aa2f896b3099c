"""Entry point: `python app.py` serves HTTP and Socket.IO; `gunicorn app:app` imports `app`."""

from finstack import create_app
from finstack.attachments.cleanup import clean_on_start
from finstack.bootstrap import prepare_database
from finstack.extensions import socketio

app = create_app()
prepare_database(app)

if __name__ == "__main__":
    clean_on_start(app)  # gunicorn does it in gunicorn.conf.py; `flask` commands importing this module do not
    # The development server; production runs gunicorn with the eventlet worker (see README).
    socketio.run(app, host=app.config["HOST"], port=app.config["PORT"], allow_unsafe_werkzeug=True)
