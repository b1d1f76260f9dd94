"""A FastAPI app for the tests: the lifespan on the asyncio processor and the user dependency."""

from __future__ import annotations

import os
from typing import Any

from fastapi import Depends, FastAPI
from starlette.requests import Request
from tests.contrib.apps.common import DATAFILE, HOLD, client_options

from flagstream.contrib.asgi import Flagstream
from flagstream.user_context import OptimizelyUserContext


def user_of(request: Request) -> tuple[str, dict[str, str]] | None:
    user_id = request.query_params.get("user")
    return (user_id, {"plan": "pro"}) if user_id else None


options = client_options()
flags = Flagstream(
    DATAFILE,
    options={"event_endpoint": options["event_endpoint"]},
    processor_options=HOLD,
    user=user_of,
)
app = FastAPI(lifespan=flags.lifespan)


@app.get("/checkout")
async def checkout(user: OptimizelyUserContext = Depends(flags.user)) -> dict[str, Any]:  # noqa: B008
    decision = user.decide("checkout")
    user.track_event("purchase", {"revenue": 4200})
    return {"pid": os.getpid(), "user": user.user_id, "variation": decision.variation_key}
