"""Entry point. `gunicorn app:app` and `flask` import `app` and change nothing; `python app.py` is the quick start:
it migrates the embedded database, creates the first admin, starts a job worker thread (JOBS_IN_PROCESS), then
serves HTTP and Socket.IO."""

from finstack import create_app
from finstack.attachments.cleanup import clean_on_start
from finstack.config import ConfigError, exit_on_config_error
from finstack.extensions import socketio

try:
    app = create_app()
except ConfigError as error:
    exit_on_config_error(error)

if __name__ == "__main__":
    from finstack.bootstrap import announce_admin, prepare_database
    from finstack.jobs.worker import start_in_process

    announce_admin(app, prepare_database(app))
    clean_on_start(app)  # gunicorn does it in gunicorn.conf.py; `flask` commands importing this module do not
    if app.config["JOBS_IN_PROCESS"]:  # gunicorn deployments run `flask worker` processes instead
        start_in_process(app)
    # The development server; production runs gunicorn with the eventlet worker (see README).
    socketio.run(app, host=app.config["HOST"], port=app.config["PORT"], allow_unsafe_werkzeug=True)
