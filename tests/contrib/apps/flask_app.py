"""A Flask app for the tests: the extension in the app-factory style."""

from __future__ import annotations

import os

from flask import Flask, Request, jsonify
from flask.typing import ResponseReturnValue
from tests.contrib.apps.common import DATAFILE, client_options

from flagstream.contrib.flask import Flagstream

flags = Flagstream()


@flags.user_loader
def user_of(request: Request) -> tuple[str, dict[str, str]] | None:
    user_id = request.args.get("user")
    return (user_id, {"plan": "pro"}) if user_id else None


def create_app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update({"FLAGSTREAM_DATAFILE": DATAFILE, "FLAGSTREAM_OPTIONS": client_options(), **config})
    flags.init_app(app)

    @app.get("/checkout")
    def checkout() -> ResponseReturnValue:
        decision = flags.user.decide("checkout")
        flags.user.track_event("purchase", {"revenue": 4200})
        return jsonify(pid=os.getpid(), user=flags.user.user_id, variation=decision.variation_key)

    return app
