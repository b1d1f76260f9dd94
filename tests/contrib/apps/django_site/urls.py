from __future__ import annotations

from django.urls import path
from tests.contrib.apps.django_site import views

urlpatterns = [
    path("checkout", views.checkout),
    path("page", views.page),
]
