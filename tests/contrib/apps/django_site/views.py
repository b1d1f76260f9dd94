from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def checkout(request: HttpRequest) -> HttpResponse:
    """One impression (decide) and one conversion (track) per request."""
    user = request.flagstream  # type: ignore[attr-defined]
    decision = user.decide("checkout")
    user.track_event("purchase", {"revenue": 4200})
    return JsonResponse({"pid": os.getpid(), "user": user.user_id, "variation": decision.variation_key})


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "flag.html")
