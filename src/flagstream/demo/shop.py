"""The demo's simulated shoppers: who they are and how likely they convert.

Pure and seeded: the same seed gives the same shoppers and the same choices,
so two demo runs show the same results table. Conversion rates differ per
variation on purpose, so the results page has real lifts to show (the one-page
checkout and the savings badge win; the discount pop-up barely moves purchases).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["COUNTRIES", "Shopper", "conversions_of", "make_shopper"]

COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "US", "GB", "CA")
APP_VERSIONS = ("3.0.9", "3.1.2", "3.2.0", "3.2.4", "3.3.1")

# Extra purchase probability per (flag, variation key) over the base rate.
_PURCHASE_UPLIFT: Mapping[tuple[str, str], float] = {
    ("checkout_flow", "one_page"): 0.030,
    ("pricing_display", "strikethrough"): 0.010,
    ("pricing_display", "savings_badge"): 0.025,
    ("shipping_promo", "free_over_25"): 0.020,
    ("discount_popup", "fifteen_off"): 0.004,
}
_CART_UPLIFT: Mapping[tuple[str, str], float] = {
    ("recommendations", "personalized"): 0.08,
    ("recommendations", "trending"): 0.05,
    ("recommendations", "popular"): 0.03,
}
BASE_PURCHASE = 0.08
BASE_ADD_TO_CART = 0.30
BASE_SIGNUP = 0.04


@dataclass(frozen=True, slots=True)
class Shopper:
    """One simulated visitor."""

    user_id: str
    attributes: Mapping[str, str | int | float | bool]


def make_shopper(index: int, rng: random.Random) -> Shopper:
    """A shopper with typed attributes that the demo datafile's audiences look at."""
    attributes: dict[str, str | int | float | bool] = {
        "country": rng.choice(COUNTRIES),
        "device": "mobile" if rng.random() < 0.55 else "desktop",
        "is_member": rng.random() < 0.2,
        "cart_value": round(rng.uniform(0, 160), 2),
        "visits": rng.randint(0, 20),
        "app_version": rng.choice(APP_VERSIONS),
    }
    return Shopper(f"shopper-{index:06d}", attributes)


def conversions_of(
    shopper: Shopper, variations: Mapping[str, str | None], rng: random.Random
) -> list[tuple[str, dict[str, object] | None]]:
    """The events this shopper tracks, given the variation key decided for each flag."""
    chosen = {(flag, key) for flag, key in variations.items() if key}
    member = bool(shopper.attributes.get("is_member"))
    purchase = BASE_PURCHASE + sum(_PURCHASE_UPLIFT.get(c, 0.0) for c in chosen) + (0.03 if member else 0.0)
    cart = BASE_ADD_TO_CART + sum(_CART_UPLIFT.get(c, 0.0) for c in chosen)
    signup = BASE_SIGNUP + (0.02 if ("discount_popup", "fifteen_off") in chosen else 0.0)
    events: list[tuple[str, dict[str, object] | None]] = []
    if rng.random() < cart:
        events.append(("add_to_cart", {"items": rng.randint(1, 4)}))
    if rng.random() < purchase:
        cents = rng.randint(1_500, 15_000) + (2_000 if member else 0)
        events.append(("purchase", {"revenue": cents, "currency": "EUR"}))
    if rng.random() < signup:
        events.append(("newsletter_signup", None))
    return events
