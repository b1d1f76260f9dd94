"""What FlagstreamMiddleware adds to a Django request, in µs (median of rounds).

The middleware is called directly around a view (no server, no Django handler), on requests
built beforehand, so the figures are the middleware's own cost:

* ``unused``: the view never reads ``request.flagstream`` (the lazy object, nothing else);
* ``decide``: the view decides through ``request.flagstream``, against the same view building
  the user context by hand (``get_client().create_user_context(...)``): the difference is what
  the middleware adds when it is used (the user callable, the lazy proxy).

Events go to a dispatcher that drops them; the batch processor runs as in production.
"""

from __future__ import annotations

import os
from pathlib import Path

import django
from _common import machine_info, median, percentile, sample, table
from django.conf import settings

DATAFILE = Path(__file__).resolve().parent.parent / "tests" / "contrib" / "apps" / "datafile.json"


class DropDispatcher:
    def dispatch_event(self, log_event: object) -> None:
        return None


def user_of(request: object) -> str:
    return request.GET["user"]  # type: ignore[attr-defined, no-any-return]


settings.configure(
    SECRET_KEY="bench",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    FLAGSTREAM={"DATAFILE": DATAFILE, "USER": user_of, "OPTIONS": {"event_dispatcher": DropDispatcher()}},
)
urlpatterns: list[object] = []
django.setup()

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from flagstream.contrib.django import FlagstreamMiddleware, close_client, get_client  # noqa: E402

CALLS = 2_000
ROUNDS = int(os.environ.get("ROUNDS", "10"))


def plain(request: object) -> HttpResponse:
    return HttpResponse("ok")


def decide_through_middleware(request: object) -> HttpResponse:
    request.flagstream.decide("checkout")  # type: ignore[attr-defined]
    return HttpResponse("ok")


def decide_by_hand(request: object) -> HttpResponse:
    user = get_client().create_user_context(request.GET["user"])  # type: ignore[attr-defined]
    assert user is not None
    user.decide("checkout")
    return HttpResponse("ok")


def main() -> None:
    factory = RequestFactory()
    requests = [factory.get(f"/checkout?user=user-{i}") for i in range(CALLS)]
    cases = {
        "view alone": plain,
        "unused (lazy)": FlagstreamMiddleware(plain),
        "decide, user built by hand": decide_by_hand,
        "decide via request.flagstream": FlagstreamMiddleware(decide_through_middleware),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    p99: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, handler in cases.items():
            times = sample(lambda i, h=handler: h(requests[i]), CALLS)  # type: ignore[misc]
            results[name].append(median(times))
            p99[name].append(percentile(times, 0.99))
    rows = [[name, f"{median(results[name]):.2f}", f"{median(p99[name]):.2f}"] for name in cases]
    print(machine_info(), f"- {ROUNDS} rounds x {CALLS} calls, µs per request")
    print(table(["case", "p50", "p99"], rows))
    lazy = median(results["unused (lazy)"]) - median(results["view alone"])
    used = median(results["decide via request.flagstream"]) - median(results["decide, user built by hand"])
    print(f"middleware adds {lazy:.2f} µs when unused, {used:.2f} µs when the view decides")
    close_client(2.0)


if __name__ == "__main__":
    main()
